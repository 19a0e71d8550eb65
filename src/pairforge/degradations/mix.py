"""``kind: mix``: a mixture of degradation models, one drawn per sample.

Why: a restorer trained on one model learns its quirks. One run can hold Real-ESRGAN-style chains and
the nine real-world types in any proportion::

    degrade:
      kind: mix
      scale: 4                      # every LQ is H/4 (components that finish larger are shrunk to it)
      components:
        - {name: chain, weight: 1, degrade: {kind: chain, preset: realesrgan}}
        - {name: realworld, weight: 1, degrade: {kind: realworld}}
      variants: 2                   # two independently degraded LQs per HQ (KEY.lq_0.png, KEY.lq_1.png)

Per sample, the component is drawn from its own stream (seed, "mix"), and the component degrades with
the sample's seed itself: a mix of one component gives exactly that component's pairs. The sample's
record is the component's record plus ``mix: {component, name, weight}`` (and the shrink, if any).
The input is cropped to a multiple of ``scale`` first, so every component and every variant keeps the
same HQ. A component that finishes at a finer scale (a real-world type at x1 in an x4 mix) degrades
the HQ shrunk to the LQ grid (``downscale_at: before``, the default) or has its LQ shrunk (``after``),
with a registered resize (the exact field of view, :func:`pairforge.degradations.resize.resize_image`).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from pairforge.configbase import Resources, StrictModel
from pairforge.degradations.base import (
    Degrader,
    DegradeResult,
    Partners,
    Variants,
    build_degrader,
    output_scale,
)
from pairforge.registry import DEGRADERS

#: the tag of the component-choice stream (independent of the components' own streams)
MIX_STREAM = 0x6D6978


@lru_cache(maxsize=1)
def _component_adapter():
    """A validator for every registered ``degrade:`` kind except ``mix`` (built on first use: the
    registry imports this module while it loads)."""
    from typing import Annotated, Union

    from pydantic import TypeAdapter

    classes = tuple(e.config for e in DEGRADERS.entries() if e.kind != "mix")
    union = classes[0] if len(classes) == 1 else Annotated[Union[classes], Field(discriminator="kind")]  # noqa: UP007
    return TypeAdapter(union), [e.kind for e in DEGRADERS.entries() if e.kind != "mix"]


class MixComponent(StrictModel):
    """One degradation model of a mix and its share of the samples."""

    name: str | None = Field(None, description="label in the records (default: the component's preset or kind)")
    weight: float = Field(gt=0, description="relative share of the samples")
    degrade: Any = Field(description="a degrade section of any kind but mix (chain, realworld, simple, ...)")

    @field_validator("degrade", mode="before")
    @classmethod
    def _degrade(cls, v: Any) -> Any:
        adapter, kinds = _component_adapter()
        if isinstance(v, dict) and v.get("kind") == "mix":
            raise ValueError("a mix component cannot itself be a mix (list its components in the outer mix)")
        if isinstance(v, dict) and "kind" not in v:
            raise ValueError(f"a component's degrade section needs a kind ({', '.join(kinds)})")
        return adapter.validate_python(v)

    def label(self) -> str:
        return self.name or getattr(self.degrade, "preset", None) or self.degrade.kind


@DEGRADERS.register(degrader="pairforge.degradations.mix:MixDegrader")
class MixDegradeConfig(StrictModel):
    """Several degradation models, one drawn per sample by weight (recorded in the sample)."""

    kind: Literal["mix"] = "mix"
    components: list[MixComponent] = Field(min_length=1)
    scale: int | None = Field(
        None, ge=1, le=16,
        description="HQ/LQ size ratio of every pair; default: the components' common scale (an error if they differ)",
    )
    downscale: Literal["area", "bicubic", "bilinear"] = Field(
        "area", description="how a component that finishes at a finer scale is shrunk to H/scale")
    downscale_at: Literal["before", "after"] = Field(
        "before",
        description="before: the HQ is shrunk to the LQ grid first and such a component degrades that (noise, JPEG "
        "blocks, moire at the LQ's own resolution, as a low-resolution camera or an upload would leave them); after: "
        "it degrades the HQ and its LQ is shrunk (fine grain is averaged away, large effects such as haze remain)",
    )
    variants: Variants = 1
    resources: Resources = Resources()

    @model_validator(mode="after")
    def _scales(self):
        scales = {c.label(): output_scale(c.degrade) for c in self.components}
        if self.scale is None:
            if len(set(scales.values())) > 1:
                got = ", ".join(f"{k} x{v}" for k, v in scales.items())
                raise ValueError(f"components finish at different scales ({got}): set scale: to bring every LQ to H/scale")
            object.__setattr__(self, "scale", next(iter(scales.values())))
        for name, s in scales.items():
            if self.scale % s:
                raise ValueError(f"component {name!r} finishes at x{s}, which does not divide the mix scale x{self.scale}")
        for c in self.components:
            if getattr(c.degrade, "variants", 1) != 1:
                raise ValueError(f"component {c.label()!r}: set variants on the mix, not on a component")
        if self.variants > 1:
            for c in self.components:
                if getattr(c.degrade, "crop", None) is not None:
                    raise ValueError(f"component {c.label()!r} crops random patches: the variants of one HQ would "
                                     "not share it (drop crop or use variants: 1)")
            sharpen = [c.label() for c in self.components if _sharpens_hq(c.degrade)]
            if sharpen and len(sharpen) < len(self.components):
                raise ValueError(f"component(s) {', '.join(sharpen)} return a sharpened HQ and the others do not: the "
                                 "variants of one HQ would not share it (use variants: 1 or no apply_to_hq)")
        return self

    def hub_models(self) -> list[tuple[str, str | None]]:
        """Every network a component loads (for ``models pull``)."""
        out: list[tuple[str, str | None]] = []
        for c in self.components:
            hub = getattr(c.degrade, "hub_models", None)
            for m in hub() if callable(hub) else []:
                if m not in out:
                    out.append(m)
        return out

    def build(self) -> MixDegrader:
        return build_degrader(self)


def _sharpens_hq(config: Any) -> bool:
    """Whether a component returns a sharpened HQ (a chain with ``usm.apply_to_hq``, BSRGAN-plus)."""
    ops = getattr(config, "ops", None)
    if not ops:
        return False
    from pairforge.degradations.chain.ops import walk

    return any(getattr(o, "op", None) == "usm" and getattr(o, "apply_to_hq", False) for o in walk(list(ops)))


class MixDegrader(Degrader):
    name = "mix"

    def __init__(self, config: MixDegradeConfig):
        self.config = config
        self.degraders: list[Degrader | None] = [None] * len(config.components)
        w = np.array([c.weight for c in config.components], dtype=np.float64)
        self.probs = w / w.sum()
        self._placement: Any = None
        self._partners: Partners | None = None

    def setup(self, placement: Any = None, partners: Partners | None = None) -> None:
        """Build and set up every component now (with the run's partner images), so a component whose
        model cannot be loaded stops the run at setup instead of failing the samples that draw it."""
        self._placement, self._partners = placement, partners
        for i in range(len(self.degraders)):
            self._degrader(i)

    def _degrader(self, i: int) -> Degrader:
        """A component, built and set up on first use when :meth:`setup` was not called (library use)."""
        if self.degraders[i] is None:
            d = build_degrader(self.config.components[i].degrade)
            d.setup(self._placement, self._partners)
            self.degraders[i] = d
        return self.degraders[i]

    def choose(self, seed: int) -> int:
        """The component of a sample (its own stream, so the component's draws are unaffected)."""
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), MIX_STREAM])))
        return int(rng.choice(len(self.probs), p=self.probs))

    def degrade(self, images: list[np.ndarray], seeds: list[int], aux: list | None = None) -> list[DegradeResult]:
        if len(images) != len(seeds):
            raise ValueError(f"{len(images)} images but {len(seeds)} seeds")
        aux = aux if aux is not None else [{} for _ in images]
        s = int(self.config.scale)
        from pairforge.degradations.resize import mod_crop

        hqs = [mod_crop(img, s) for img in images]
        picks = [self.choose(seed) for seed in seeds]
        out: list[DegradeResult | None] = [None] * len(images)
        for i in sorted(set(picks)):
            rows = [r for r, p in enumerate(picks) if p == i]
            inputs = [hqs[r] for r in rows]
            shrink = self.config.downscale_at == "before" and output_scale(self.config.components[i].degrade) < s
            if shrink:
                inputs = [self._shrink(hq, output_scale(self.config.components[i].degrade)) for hq in inputs]
            res = self._degrader(i).degrade(inputs, [seeds[r] for r in rows], [aux[r] for r in rows])
            for r, one, x in zip(rows, res, inputs):
                if shrink:
                    one.hq = None  # the component saw the shrunk HQ; the pair keeps the full one
                    one.params = {**one.params, "input_size": [int(x.shape[0]), int(x.shape[1])]}
                out[r] = self._finish(i, images[r], hqs[r], one, shrunk_before=shrink)
        return out  # type: ignore[return-value]

    def _shrink(self, hq: np.ndarray, component_scale: int) -> np.ndarray:
        """The HQ on the grid a component must degrade to finish at the mix scale (downscale_at: before)."""
        from pairforge.degradations.resize import resize_image

        f = int(self.config.scale) // component_scale
        return np.ascontiguousarray(resize_image(hq, (max(1, hq.shape[0] // f), max(1, hq.shape[1] // f)), self.config.downscale))

    def _finish(self, i: int, image: np.ndarray, hq: np.ndarray, res: DegradeResult, shrunk_before: bool = False) -> DegradeResult:
        c = self.config
        comp = c.components[i]
        s = int(c.scale)
        hq_out = res.hq if res.hq is not None else hq
        record: dict[str, Any] = {"component": i, "name": comp.label(), "weight": float(self.probs[i])}
        lq = res.lq
        want = (max(1, hq_out.shape[0] // s), max(1, hq_out.shape[1] // s))
        if shrunk_before:
            record["downscale"] = {"mode": c.downscale, "at": "before", "from": [int(hq.shape[0]), int(hq.shape[1])],
                                   "to": list(want)}
        if lq.shape[:2] != want:
            from pairforge.degradations.resize import resize_image

            record["downscale"] = {"mode": c.downscale, "at": "after", "from": [int(lq.shape[0]), int(lq.shape[1])], "to": list(want)}
            lq = np.ascontiguousarray(resize_image(lq, want, c.downscale))
        params = dict(res.params)
        params["mix"] = record
        params["scale"] = s
        if "lq_size" in params and isinstance(params["lq_size"], list):
            params["lq_size"] = [int(lq.shape[0]), int(lq.shape[1])]
        changed = hq_out.shape != image.shape or res.hq is not None
        return DegradeResult(lq=lq, params=params, hq=np.ascontiguousarray(hq_out) if changed else None)
