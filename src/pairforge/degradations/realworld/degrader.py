"""``kind: realworld``: per-sample choice among the nine real-world types, optional stacking, optional
web-style tail, with depth and segment providers, and a measured strength in every sample's params.

Per sample (seeded by the pipeline from (run seed, index) only, so batching never changes a pair):
one type drawn by ``weights`` (equal over the nine by default, as the reference trainer sampled the
tasks), or with probability ``stack.probability`` several types (a preset such as
low_light + noise + compression, or ``stack.count`` types drawn by weight) applied in physical order;
then, with probability ``web_tail.probability``, the web tail. All parameters are drawn before any
pixel is touched, so the random stream does not depend on image content. Depth / segments are computed
once per sample, on the HQ, and only when a drawn type needs them; the provider used is recorded.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, create_model, field_validator

from pairforge.batch import jsonable
from pairforge.configbase import IntRange, Resources, StrictModel
from pairforge.degradations.base import Degrader, DegradeResult, build_degrader
from pairforge.degradations.realworld.common import SeverityChoice, check_image, tidy
from pairforge.degradations.realworld.depth import DepthConfig
from pairforge.degradations.realworld.registry import NAMES, ORDER, make_type
from pairforge.degradations.realworld.segments import SegmentsConfig
from pairforge.degradations.realworld.strength import psnr, psnr_ssim
from pairforge.degradations.realworld.webtail import (
    WebTailConfig,
    apply_tail,
    sample_tail,
)
from pairforge.registry import DEGRADERS, REALWORLD_TYPES
from pairforge.seeding import rng_from_seed

#: the registered type names (``Literal[NAMES]``: a config naming an unknown type lists the allowed ones)
TypeName = Literal[NAMES]  # type: ignore[valid-type]


class StackConfig(StrictModel):
    probability: float = Field(0.0, ge=0.0, le=1.0, description="share of samples with several types")
    count: IntRange = Field((2, 3), description="types per stacked sample (when no presets)")
    presets: list[list[TypeName]] = Field(
        default_factory=list, description="fixed stacks, one drawn uniformly, e.g. [[low_light, noise, compression]]")

    @field_validator("count")
    @classmethod
    def _count(cls, v):
        if v[0] < 1 or v[1] > len(NAMES):
            raise ValueError(f"count must lie in [1, {len(NAMES)}], got {list(v)}")
        return v

    @field_validator("presets")
    @classmethod
    def _presets(cls, v):
        for p in v:
            if not p or len(set(p)) != len(p):
                raise ValueError(f"a preset must be a non-empty list of distinct types, got {p}")
        return v


class _RealWorldDegradeBase(StrictModel):
    """The nine real-world degradation types (blur, compression, moire, low light, noise, flare,
    reflection, haze, rain) with their own sections."""

    kind: Literal["realworld"] = "realworld"
    weights: dict[TypeName, float] = Field(
        default_factory=lambda: {n: 1.0 for n in NAMES}, description="relative weights of the types")
    severity: SeverityChoice | None = Field(None, description="set every type's severity at once")
    stack: StackConfig = StackConfig()
    web_tail: WebTailConfig = WebTailConfig()
    depth: DepthConfig = DepthConfig()
    segments: SegmentsConfig = SegmentsConfig()
    measure_ssim: bool = Field(True, description="record SSIM (costs ~as much as a light degradation)")
    resources: Resources = Resources(batch_size=8)

    @field_validator("weights")
    @classmethod
    def _weights(cls, v):
        if any(w < 0 for w in v.values()) or not any(w > 0 for w in v.values()):
            raise ValueError(f"weights must be >= 0 with at least one > 0, got {v}")
        return v

    def hub_models(self) -> list[tuple[str, str | None]]:
        """(model id or path, revision) of every network this config loads (for `models pull`)."""
        return [(m.model, m.revision) for m in (self.depth, self.segments) if m.model]

    def build(self) -> RealWorldDegrader:
        return build_degrader(self)



#: one section per registered type (``blur: {...}``, ``haze: {...}``), so a new type needs no field here
RealWorldDegradeConfig = DEGRADERS.register("realworld", degrader="pairforge.degradations.realworld.degrader:RealWorldDegrader")(
    create_model(
        "RealWorldDegradeConfig",
        __base__=_RealWorldDegradeBase,
        __module__=__name__,
        **{e.kind: (e.config, Field(default_factory=e.config)) for e in REALWORLD_TYPES.entries()},
    )
)


class RealWorldDegrader(Degrader):
    name = "realworld"

    def __init__(self, config: RealWorldDegradeConfig | None = None):
        self.config = config if config is not None else RealWorldDegradeConfig()
        self.types = {n: make_type(n, self._type_config(n)) for n in NAMES}
        self._depth = None
        self._segments = None

    def _type_config(self, name: str):
        cfg = getattr(self.config, name)
        if self.config.severity is not None:
            cfg = cfg.model_copy(update={"severity": self.config.severity})
        return cfg

    @property
    def depth_provider(self):
        if self._depth is None:
            self._depth = self.config.depth.build()
        return self._depth

    @property
    def segment_provider(self):
        if self._segments is None:
            self._segments = self.config.segments.build()
        return self._segments

    def choose(self, rng: np.random.Generator) -> list[str]:
        """The types of one sample, in physical order."""
        weights = {n: float(self.config.weights.get(n, 0.0)) for n in NAMES}
        names = [n for n in NAMES if weights[n] > 0]
        p = np.array([weights[n] for n in names])
        st = self.config.stack
        if rng.random() < st.probability:
            if st.presets:
                chosen = list(st.presets[int(rng.integers(0, len(st.presets)))])
            else:
                k = min(int(rng.integers(st.count[0], st.count[1] + 1)), len(names))
                idx = rng.choice(len(names), size=k, replace=False, p=p / p.sum())
                chosen = [names[int(i)] for i in idx]
        else:
            chosen = [names[int(rng.choice(len(names), p=p / p.sum()))]]
        return [n for n in ORDER if n in chosen]

    def prepare_scene(self, image: np.ndarray, needs: set[str], aux: dict) -> dict:
        """Fill depth / segments into ``aux`` (computed on the HQ) and say which source was used."""
        info: dict[str, Any] = {}
        if "depth" in needs:
            if aux.get("depth") is None:
                aux["depth"] = self.depth_provider(image)
                aux["depth_source"] = self.depth_provider.source
            info["depth_source"] = aux.get("depth_source", "aux")
        if "segments" in needs:
            if aux.get("segments") is None:
                aux["segments"] = self.segment_provider(image)
                aux["segments_source"] = self.segment_provider.source
            info["segments_source"] = aux.get("segments_source", "aux")
            info["segments_count"] = int(np.unique(aux["segments"]).size)
        return info

    def degrade(self, images, seeds, aux=None):
        if aux is None:
            aux = [{} for _ in images]
        if not (len(images) == len(seeds) == len(aux)):
            raise ValueError(f"images, seeds and aux differ in length: {len(images)}, {len(seeds)}, {len(aux)}")
        return [self.degrade_one(img, int(s), a) for img, s, a in zip(images, seeds, aux)]

    def degrade_one(self, image: np.ndarray, seed: int, aux: dict | None = None) -> DegradeResult:
        check_image(image)
        rng = rng_from_seed(seed)
        names = self.choose(rng)
        plan = [(n, self.types[n].sample(rng)) for n in names]
        tail = sample_tail(self.config.web_tail, rng) if rng.random() < self.config.web_tail.probability else None
        local = dict(aux or {})
        local["_partner_cache"] = {}
        needs: set[str] = set()
        for n, p in plan:
            needs |= self.types[n].needs(p)
        record: dict[str, Any] = {"chain": "realworld", "type": "+".join(names), "types": names,
                                  "stacked": len(names) > 1, "scale": 1}
        record.update(self.prepare_scene(image, needs, local))
        x = image
        ops = []
        stats = {}
        for n, p in plan:
            t = self.types[n]
            p.update(jsonable(t.bind(x, p, local)))
            y = t.apply(x, p, local)
            stat = tidy(t.statistic(x, y, p, local))
            stat["psnr"] = psnr(x, y)
            p.pop("type", None)
            ops.append({"op": n, **p, "stat": stat})
            stats[n] = stat
            x = y
        if tail is not None:
            x = apply_tail(x, tail)
            ops.append(tail)
        record["web_tail"] = tail is not None
        record["ops"] = ops
        strength = psnr_ssim(image, x) if self.config.measure_ssim else {"psnr": psnr(image, x)}
        strength["stats"] = stats
        record["strength"] = strength
        return DegradeResult(lq=np.ascontiguousarray(x), params=tidy(record))

