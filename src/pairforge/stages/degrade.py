"""The degrade stage: binds a :class:`pairforge.degradations.base.Degrader` to the stage protocol."""
from __future__ import annotations

import logging

from pairforge.batch import Batch, Rejection, live_rows, reject
from pairforge.degradations.base import build_degrader
from pairforge.stage import RunContext, Stage

log = logging.getLogger(__name__)

#: degrader kinds whose ``degrade`` may run concurrently on different images in threads of one process
#: (per-sample work from per-sample seeds; the chain's thread pool is guarded; realworld's lazily built
#: depth/segment providers may at worst be built twice on the first concurrent calls)
THREAD_SAFE_KINDS = ("chain", "simple", "realworld")


class DegradeStage(Stage):
    name = "degrade"

    def __init__(self, config, context: RunContext):
        super().__init__(config, context)
        self.degrader = None

    @property
    def concurrent_calls(self) -> bool:  # type: ignore[override]
        return getattr(self.config, "kind", None) in THREAD_SAFE_KINDS

    def setup(self) -> None:
        self.degrader = build_degrader(self.config)

    def _aux(self, batch: Batch, row: int) -> dict:
        aux = {"index": int(batch["index"][row]), "key": batch["key"][row]}
        if "num_samples" in self.context.options:  # lets partner draws (reflection) span the whole run
            aux["num_samples"] = int(self.context.options["num_samples"])
        if self.context.load_source_image is not None:
            aux["load_image"] = self.context.load_source_image
        return aux

    def process(self, batch: Batch) -> Batch:
        rows = live_rows(batch)
        if "lq" not in batch:
            batch["lq"] = [None] * len(batch["index"])
        if not rows:
            return batch
        images = [batch["hq"][r] for r in rows]
        seeds = [self.context.seed_for(batch["index"][r], "degrade") for r in rows]
        aux = [self._aux(batch, r) for r in rows]
        try:
            results = self.degrader.degrade(images, seeds, aux)
        except Exception as e:
            # one bad sample must not take its batch down: retry one by one and reject the failures
            log.warning("degrade batch failed (%r); retrying per sample", e)
            results = []
            for img, seed, a in zip(images, seeds, aux):
                try:
                    results.append(self.degrader.degrade([img], [seed], [a])[0])
                except Exception as e1:
                    results.append(e1)
        for row, res in zip(rows, results):
            if isinstance(res, Exception):
                reject(batch, row, Rejection("degrade", "error", f"{type(res).__name__}: {res}"))
                continue
            batch["lq"][row] = res.lq
            if res.hq is not None:
                batch["hq"][row] = res.hq
            batch["meta"][row]["degradation"] = res.params
        return batch
