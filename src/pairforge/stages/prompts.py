"""The prompt stage: gives every sample its scene prompt from the run's prompt bank.

For bank sources (template, file, llm) the bank is built on the driver in :meth:`PromptStage.prepare`
(``needs_calibration``) and persisted in the run directory before any shard is processed; workers only
read it, so a prompt never depends on the worker or on a resume.
"""
from __future__ import annotations

from pairforge.batch import Batch, Rejection, StageResources, live_rows, reject
from pairforge.prompts.bank import PromptBank, bank_size, load_or_build_bank
from pairforge.prompts.command import prompts_command
from pairforge.prompts.config import EmptyPromptsConfig
from pairforge.stage import RunContext, Stage

__all__ = ["PromptStage", "prompts_command"]


class PromptStage(Stage):
    name = "prompts"

    reads = ("index", "reject")
    writes = ("prompt", "meta", "reject")

    def __init__(self, config, context: RunContext):
        """``config``: a SynthesisSourceConfig; the run's size (``context.num_samples``) is the default
        bank size."""
        super().__init__(config, context)
        self.prompts_cfg = config.prompts
        self.needs_calibration = not isinstance(self.prompts_cfg, EmptyPromptsConfig)
        self.bank: PromptBank | None = None

    @property
    def resources(self) -> StageResources:
        return StageResources(num_cpus=0.25, num_gpus=0.0, batch_size=self.config.resources.batch_size)

    def _bank(self) -> PromptBank:
        count = bank_size(self.prompts_cfg, self.context.num_samples)
        return load_or_build_bank(self.prompts_cfg, count, self.context.seed, self.context.run_storage())

    def prepare(self, upstream=None) -> None:
        """Build (or load) the bank on the driver and persist it in the run directory."""
        if self.needs_calibration:
            self.bank = self._bank()

    def __getstate__(self):
        # workers read the persisted bank themselves: do not ship a million prompts inside every actor
        d = super().__getstate__()
        if self.context.run_url is not None:
            d["bank"] = None
        return d

    def setup(self) -> None:
        if self.needs_calibration and self.bank is None:
            self.bank = self._bank()

    def process(self, batch: Batch) -> Batch:
        n = len(batch["index"])
        batch.setdefault("prompt", [None] * n)
        for row in live_rows(batch):
            index = int(batch["index"][row])
            src = {"kind": "synthesis", "prompt_source": self.prompts_cfg.kind}
            if self.bank is None:
                prompt = ""
            else:
                hit = self.bank.lookup(index)
                if hit is None:
                    reject(batch, row, Rejection(self.name, "prompts_exhausted",
                                                 f"sample {index} is past the {len(self.bank)}-prompt bank "
                                                 "and prompts.repeat is false", len(self.bank)))
                    continue
                j, prompt, origin = hit
                src["prompt_index"] = j
                src["prompt_origin"] = origin
            src["prompt"] = prompt
            batch["prompt"][row] = prompt
            batch["meta"][row]["source"] = src
        return batch
