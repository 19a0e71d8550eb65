"""The synthesis stages of a ``kind: synthesis`` source: prompts -> text-to-image (GPU).

``synthesis_stages(config, ctx)`` returns them in order; the first receives a batch from
``pairforge.batch.new_batch(indices)``. They fill ``prompt``, ``negative_prompt``, ``hq`` (uint8 RGB),
``meta["source"]`` and ``meta["synthesis"]``; broken outputs (NaN, black, flat) are rejected with a reason.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from pairforge.batch import Batch, live_rows, reject
from pairforge.devices import resolve_device
from pairforge.stage import RunContext, Stage
from pairforge.stages.prompts import PromptStage
from pairforge.synthesis.backend import DiffusionBackend, GenRequest, compose_prompts
from pairforge.synthesis.checks import check_generation, to_uint8
from pairforge.synthesis.config import SynthesisSourceConfig


class SynthesisStage(Stage):
    name = "synthesis"
    reads = ("index", "prompt", "meta", "reject")
    writes = ("prompt", "negative_prompt", "hq", "meta", "reject")
    _transient = ("backend",)

    def __init__(self, config: SynthesisSourceConfig, context: RunContext):
        super().__init__(config, context)
        self.backend: DiffusionBackend | None = None
        w = config.generation.size_weights
        self._size_p = None if w is None else np.asarray(w, np.float64) / float(sum(w))

    def setup(self) -> None:
        self.device = resolve_device(self.context.device, self.placement)
        self.backend = DiffusionBackend(self.config.model, self.config.generation, device=self.device)
        self.backend.load()

    def size_for(self, index: int) -> tuple[int, int]:
        """The resolution bucket of a sample (drawn from its own generator)."""
        sizes = self.config.generation.sizes
        if len(sizes) == 1:
            return tuple(sizes[0])
        rng = self.context.rng(index, "synthesis-size")
        return tuple(sizes[int(rng.choice(len(sizes), p=self._size_p))])

    def request_for(self, index: int, prompt: str) -> GenRequest:
        assert self.backend is not None
        text, negative = compose_prompts(prompt or "", self.config.generation, self.backend.tokens)
        h, w = self.size_for(index)
        return GenRequest(text, negative, self.context.seed_for(index, "synthesis"), h, w)

    def process(self, batch: Batch) -> Batch:
        assert self.backend is not None
        n = len(batch["index"])
        batch.setdefault("prompt", [None] * n)
        batch.setdefault("negative_prompt", [None] * n)
        batch.setdefault("hq", [None] * n)
        rows = live_rows(batch)
        reqs = [self.request_for(int(batch["index"][r]), batch["prompt"][r]) for r in rows]
        images = self.backend.generate(reqs) if reqs else []
        label = "negative" if self.config.generation.mode == "negatives" else "positive"
        for row, req, img in zip(rows, reqs, images):
            meta = batch["meta"][row]
            src = meta.setdefault("source", {"kind": "synthesis"})
            src.update(model=self.backend.info["model"], revision=self.backend.info["revision"], quality=label)
            if label == "negative":  # the writer stores these as neg.png, apart from pairs
                meta["quality"] = label
            meta["synthesis"] = self.backend.sample_info(req)
            batch["negative_prompt"][row] = req.negative_prompt
            if batch["prompt"][row] is None:
                batch["prompt"][row] = ""
            bad = check_generation(img, self.config.generation.checks, self.name)
            if bad is not None:
                reject(batch, row, bad)
                continue
            batch["hq"][row] = to_uint8(img)
        return batch


def synthesis_stages(config, ctx: RunContext, files: list[str] | None = None) -> list[Stage]:
    """The stages of a synthesis source, in order. ``config`` is a SynthesisSourceConfig (or a
    PipelineConfig whose source is one; then its ``run.num_samples`` is the run size unless the
    context has one). ``files`` is the plan builder's listing argument, unused (a synthesis source
    reads no input files)."""
    if not isinstance(config, SynthesisSourceConfig):
        source = getattr(config, "source", None)
        if not isinstance(source, SynthesisSourceConfig):
            raise TypeError("synthesis_stages needs a synthesis source config")
        if ctx.num_samples is None:
            ctx = replace(ctx, num_samples=config.run.num_samples)
        config = source
    return [PromptStage(config, ctx), SynthesisStage(config, ctx)]
