"""The degrade stage: binds a :class:`pairforge.degradations.base.Degrader` to the stage protocol."""
from __future__ import annotations

import logging

import numpy as np

from pairforge.batch import Batch, Rejection, live_rows, reject
from pairforge.degradations.base import SampleAux, build_degrader
from pairforge.registry import DEGRADERS, SOURCES
from pairforge.stage import RunContext, Stage

log = logging.getLogger(__name__)

def default_max_pixels(config) -> int | None:
    """The degrade stage's default pixel limit: the ``max_pixels`` its kind registered (about 4 GB per
    worker at the peak memory measured per HQ pixel: simple ~20 B, chain ~60 B, realworld ~230 B; README
    "Memory"); a mix takes its most memory-hungry component's. ``resources.max_pixels`` overrides it."""
    if getattr(config, "kind", None) == "mix":
        limits = [default_max_pixels(c.degrade) for c in config.components]
        return min((x for x in limits if x), default=None)
    return DEGRADERS.entry_for(config).options.get("max_pixels")


class DegradeStage(Stage):
    """``source``/``files``: the run's source config (and listing when not in the run directory), so
    the degrader can be given other samples' images at setup when the source registers ``partners``."""

    name = "degrade"
    reads = ("index", "key", "hq", "meta", "reject")
    writes = ("hq", "lq", "meta", "reject")
    _transient = ("degrader",)

    def __init__(self, config, context: RunContext, source=None, files: list[str] | None = None):
        super().__init__(config, context)
        self.source = source
        self.files = files
        self.degrader = None

    @property
    def default_max_pixels(self) -> int | None:
        return default_max_pixels(self.config)

    @property
    def concurrent_calls(self) -> bool:  # type: ignore[override]
        """Whether the degrader registered ``thread_safe=True``: its ``degrade`` may run concurrently on
        different images in threads of one process."""
        return bool(DEGRADERS.entry_for(self.config).options.get("thread_safe", False))

    def setup(self) -> None:
        self.degrader = build_degrader(self.config)
        partners = None
        if self.source is not None:
            entry = SOURCES.entry_for(self.source)
            if "partners" in entry.impls:
                partners = entry.load("partners")(self.source, self.context, self.files)
        self.degrader.setup(self.placement, partners)

    def _degrade(self, images, seeds, aux) -> list:
        """One degrader call over the live rows; a failing batch is retried sample by sample, so one bad
        sample does not take its batch down (its result is the exception)."""
        try:
            return self.degrader.degrade(images, seeds, aux)
        except Exception as e:
            log.warning("degrade batch failed (%r); retrying per sample", e)
            results: list = []
            for img, seed, a in zip(images, seeds, aux):
                try:
                    results.append(self.degrader.degrade([img], [seed], [a])[0])
                except Exception as e1:
                    results.append(e1)
            return results

    def process(self, batch: Batch) -> Batch:
        """Degrade every live row; with ``variants: K`` the degrader runs K times with K seeds (variant 0
        with the seed a single LQ uses) and the row's ``lq`` becomes a list of K images, its
        ``degradation`` a list of K records (the dataset writer names them ``lq_0.png ..``)."""
        rows = live_rows(batch)
        if "lq" not in batch:
            batch["lq"] = [None] * len(batch["index"])
        if not rows:
            return batch
        k = int(getattr(self.config, "variants", 1) or 1)
        images = [batch["hq"][r] for r in rows]
        aux = [SampleAux(int(batch["index"][r]), batch["key"][r]) for r in rows]
        per_variant = []
        for v in range(k):
            stream = "degrade" if v == 0 else f"degrade.variant{v}"
            seeds = [self.context.seed_for(batch["index"][r], stream) for r in rows]
            per_variant.append(self._degrade(images, seeds, aux))
        for j, row in enumerate(rows):
            results = [pv[j] for pv in per_variant]
            err = next((r for r in results if isinstance(r, Exception)), None)
            if err is not None:
                reject(batch, row, Rejection("degrade", "error", f"{type(err).__name__}: {err}"))
                continue
            if k == 1:
                res = results[0]
                batch["lq"][row] = res.lq
                if res.hq is not None:
                    batch["hq"][row] = res.hq
                batch["meta"][row]["degradation"] = res.params
                continue
            hq = results[0].hq
            if any(not _same_hq(hq, r.hq) for r in results[1:]):
                reject(batch, row, Rejection(
                    "degrade", "variants_hq",
                    f"the {k} variants changed the HQ differently (a random crop or a sharpened HQ in some components): "
                    "variants need one HQ for all"))
                continue
            batch["lq"][row] = [r.lq for r in results]
            if hq is not None:
                batch["hq"][row] = hq
            batch["meta"][row]["degradation"] = [r.params for r in results]
        return batch


def _same_hq(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.array_equal(a, b))
