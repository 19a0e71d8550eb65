"""The degrade stage: binds a :class:`pairforge.degradations.base.Degrader` to the stage protocol."""
from __future__ import annotations

import logging

import numpy as np

from pairforge.batch import Batch, Rejection, live_rows, reject
from pairforge.degradations.base import build_degrader
from pairforge.stage import RunContext, Stage

log = logging.getLogger(__name__)

#: degrader kinds whose ``degrade`` may run concurrently on different images in threads of one process
#: (per-sample work from per-sample seeds; the chain's thread pool is guarded; realworld's lazily built
#: depth/segment providers may at worst be built twice on the first concurrent calls)
THREAD_SAFE_KINDS = ("chain", "simple", "realworld")


#: default pixel limit per degradation kind: about 4 GB per worker at the peak memory measured per
#: HQ pixel (simple ~20 B, chain ~60 B, realworld ~230 B; README "Memory"); resources.max_pixels overrides
DEFAULT_MAX_PIXELS_BY_KIND = {"simple": 178_956_970, "chain": 64_000_000, "realworld": 16_000_000}


def default_max_pixels(config) -> int | None:
    """The degrade stage's default pixel limit for a config (a mix: its most memory-hungry component's)."""
    if getattr(config, "kind", None) == "mix":
        limits = [default_max_pixels(c.degrade) for c in config.components]
        return min((x for x in limits if x), default=None)
    return DEFAULT_MAX_PIXELS_BY_KIND.get(getattr(config, "kind", None))


class DegradeStage(Stage):
    name = "degrade"

    def __init__(self, config, context: RunContext):
        super().__init__(config, context)
        self.degrader = None

    @property
    def default_max_pixels(self) -> int | None:
        return default_max_pixels(self.config)

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
        aux = [self._aux(batch, r) for r in rows]
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
