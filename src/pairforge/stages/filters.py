"""Filter stages: bind the sanity checks and IQA scorer to the stage protocol."""
from __future__ import annotations

from pairforge.batch import Batch, Rejection, live_rows, reject
from pairforge.filters.config import IQAFilterConfig, SanityFilterConfig
from pairforge.filters.iqa import IQAScorer, passes
from pairforge.filters.sanity import check_image
from pairforge.stage import RunContext, Stage


def _filters_meta(batch: Batch, row: int) -> dict:
    return batch["meta"][row].setdefault("filters", {})


class SanityStage(Stage):
    name = "sanity"

    def __init__(self, config: SanityFilterConfig, context: RunContext):
        super().__init__(config, context)

    def process(self, batch: Batch) -> Batch:
        for row in live_rows(batch):
            rejection, stats = check_image(batch["hq"][row], self.config)
            _filters_meta(batch, row)["sanity"] = stats
            if rejection is not None:
                reject(batch, row, rejection)
        return batch


class IQAStage(Stage):
    name = "iqa"

    def __init__(self, config: IQAFilterConfig, context: RunContext):
        super().__init__(config, context)
        self.scorer: IQAScorer | None = None

    def setup(self) -> None:
        self.scorer = IQAScorer(self.config.metrics, device=self.context.device, max_side=self.config.max_side)
        self.scorer.load()

    def process(self, batch: Batch) -> Batch:
        rows = live_rows(batch)
        if not rows:
            return batch
        scores = self.scorer.score([batch["hq"][r] for r in rows])
        for j, row in enumerate(rows):
            record = {}
            verdict: Rejection | None = None
            for rule in self.config.metrics:
                info = self.scorer.info[rule.name]
                s = scores[rule.name][j]
                record[rule.name] = {"score": s, "lower_better": info.lower_better}
                if rule.threshold is not None:
                    record[rule.name]["threshold"] = rule.threshold
                    if verdict is None and not passes(s, rule.threshold, info.lower_better):
                        op = ">" if info.lower_better else "<"
                        verdict = Rejection(
                            "iqa", rule.name, f"{rule.name} score {s:.3f} {op} threshold {rule.threshold}", s
                        )
            _filters_meta(batch, row)["iqa"] = record
            if verdict is not None:
                reject(batch, row, verdict)
        return batch
