"""``kind: realworld``: per-sample choice among the nine real-world types, stacking, a capture/upload
tail, with a scene model (depth, salient subject, segments), and a measured strength in every sample.

Per sample (seeded by the pipeline from (run seed, index) only, so batching never changes a pair):
one type drawn by ``weights`` (equal over the nine by default, as the reference trainer sampled the
tasks), or with probability ``stack.probability`` (30% by default) a second type (a preset such as
low_light + noise + compression, or ``stack.count`` types drawn by weight) applied in physical order;
then, with probability ``web_tail.probability`` (80% by default), the capture/upload tail (resize, blur,
noise, JPEG): real photos rarely carry exactly one clean effect. All random parameters are drawn before
any pixel is touched; parameters that depend on the image (where a flare's source is, which depth form
the scene allows, the exposure that reaches a target brightness) are resolved by each type's ``bind``
and recorded. Rain is outdoor weather: on documents and scenes without an outdoor layout another type
is drawn instead (``substituted`` in the record) unless ``rain.scenes: any``.

Scene inputs are computed once per sample on the HQ and only when a drawn type needs them: the
weight-free scene model (:mod:`.scene`), or, when configured, a depth network and a SAM-family
segmenter, each run once per batch on the batch's images that need it; ``scene`` in the record says
which depth form and sources were used.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, create_model, field_validator

from pairforge.batch import jsonable
from pairforge.configbase import IntRange, Resources, StrictModel
from pairforge.degradations.base import (
    Degrader,
    DegradeResult,
    Partners,
    SampleAux,
    Variants,
    build_degrader,
)
from pairforge.degradations.fidelity import psnr, psnr_ssim
from pairforge.degradations.realworld.common import (
    SeverityChoice,
    require_rgb8,
    tidy,
    weighted_choice,
)
from pairforge.degradations.realworld.depth import DepthConfig
from pairforge.degradations.realworld.registry import NAMES, ORDER, make_type
from pairforge.degradations.realworld.scene import Scene
from pairforge.degradations.realworld.segments import SegmentsConfig
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
    probability: float = Field(0.3, ge=0.0, le=1.0, description="share of samples with several types")
    count: IntRange = Field((2, 2), description="types per stacked sample (when no presets)")
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
    measure_ssim: bool = Field(True, description="record SSIM of LQ vs HQ (luma, full resolution, OpenCV, ~3 ms at 512 px)")
    type_statistics: bool = Field(True, description="record each type's signature statistic")
    variants: Variants = 1
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
RealWorldDegradeConfig = DEGRADERS.register("realworld", degrader="pairforge.degradations.realworld.degrader:RealWorldDegrader",
                                                   thread_safe=True, max_pixels=16_000_000)(
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
        self.partners: Partners | None = None

    def setup(self, placement=None, partners: Partners | None = None) -> None:
        """Keep the run's partner images (the reflection layer is another sample of the run) and load
        the configured depth / segmentation models now: a model that cannot be loaded stops the run
        here, with one line naming it, instead of turning every sample that needs it into an error."""
        self.partners = partners
        if self.config.depth.model:
            self.depth_provider.load()
        if self.config.segments.model:
            self.segment_provider.load()

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
        """Put the scene model (and a configured provider's depth / segments, unless the caller or the
        batch pass already did) into ``aux``; returns what the record says about the scene."""
        scene = aux.get("scene")
        if not isinstance(scene, Scene) or scene.shape != image.shape[:2]:
            scene = Scene(image)
            aux["scene"] = scene
        if "depth" in needs:
            if aux.get("depth") is not None:
                scene.set_depth(aux["depth"], str(aux.get("depth_source", "aux")))
            elif self.config.depth.model and scene.depth_form != "model":
                scene.set_depth(self.depth_provider(image), self.depth_provider.source)
        if aux.get("subject") is not None and "subject" in needs:
            scene.set_subject(aux["subject"])
        model = self.config.segments.model
        if ("segments" in needs or (model and "subject" in needs)) and aux.get("segments") is None:
            if model or self.config.segments.method != "merge":
                aux["segments"] = self.segment_provider(image)
                aux["segments_source"] = self.segment_provider.source
            else:
                aux["segments"] = scene.segments(self.config.segments.segments, image.shape[:2])
                aux["segments_source"] = "classical:merge"
        if model and "subject" in needs and aux.get("segments") is not None:
            scene.set_regions(aux["segments"])  # the subject is one of the model's masks
            needs.add("segments")
        return {}

    def scene_record(self, aux: dict, needs: set[str]) -> dict:
        info: dict[str, Any] = {}
        scene = aux.get("scene")
        if isinstance(scene, Scene):
            info = scene.info
        if "depth" in needs and isinstance(scene, Scene):
            info["depth_form"], info["depth_source"] = scene.depth_form, scene.depth_source
        if "subject" in needs and isinstance(scene, Scene):
            info["subject_source"] = "model-masks" if self.config.segments.model else "saliency"
        if "segments" in needs and aux.get("segments") is not None:
            info["segments_source"] = aux.get("segments_source", "aux")
            info["segments_count"] = int(np.unique(aux["segments"]).size)
        return info

    def _plan(self, image: np.ndarray, seed: int, aux: dict) -> tuple[list, dict | None, dict]:
        """Draw the sample's types and parameters; swap rain for another type where it does not belong."""
        rng = rng_from_seed(seed)
        names = self.choose(rng)
        plan = [(n, self.types[n].sample(rng)) for n in names]
        tail = sample_tail(self.config.web_tail, rng) if rng.random() < self.config.web_tail.probability else None
        substituted = {}
        if "rain" in names:
            if "scene" not in aux:
                aux["scene"] = Scene(image)
            why = self.types["rain"].applicable(image, aux)
            if why is not None:
                others = {n: w for n, w in self.config.weights.items() if n != "rain" and n not in names and w > 0}
                sub_rng = rng_from_seed(seed ^ 0x5EED5)
                plan = [(n, p) for n, p in plan if n != "rain"]
                if others:
                    n = weighted_choice(sub_rng, others)
                    plan.append((n, self.types[n].sample(sub_rng)))
                    substituted = {"rain": n, "reason": why}
                else:
                    substituted = {"rain": None, "reason": why}
                plan.sort(key=lambda t: ORDER.index(t[0]))
        return plan, tail, substituted

    def degrade(self, images, seeds, aux=None):
        if aux is None:
            aux = [{} for _ in images]
        if not (len(images) == len(seeds) == len(aux)):
            raise ValueError(f"images, seeds and aux differ in length: {len(images)}, {len(seeds)}, {len(aux)}")
        for img in images:
            require_rgb8(img)
        locals_ = [self._local(a) for a in aux]
        plans = [self._plan(img, int(s), a) for img, s, a in zip(images, seeds, locals_)]
        # networks run once per batch, on the images whose drawn types need them
        if self.config.depth.model:
            want = [i for i, (plan, _, _) in enumerate(plans)
                    if any("depth" in self.types[n].needs(p) for n, p in plan) and locals_[i].get("depth") is None]
            if want:
                maps = self.depth_provider.batch([images[i] for i in want])
                for i, d in zip(want, maps):
                    locals_[i]["depth"], locals_[i]["depth_source"] = d, self.depth_provider.source
        if self.config.segments.model:
            want = [i for i, (plan, _, _) in enumerate(plans)
                    if any(self.types[n].needs(p) & {"segments", "subject"} for n, p in plan)
                    and locals_[i].get("segments") is None]
            if want:
                maps = self.segment_provider.batch([images[i] for i in want])
                for i, lab in zip(want, maps):
                    locals_[i]["segments"], locals_[i]["segments_source"] = lab, self.segment_provider.source
        return [self._run(img, pl, a) for img, pl, a in zip(images, plans, locals_)]

    def _statistic(self, t, x: np.ndarray, y: np.ndarray, p: dict, local: dict) -> dict:
        """The type's signature; on every second row and column when the short side is >= 384 px (a
        quarter of the cost; strided, not averaged, so noise variances and streak widths are kept).
        Compression is measured at full size (its 8 x 8 grid would not survive)."""
        if t.name == "compression" or min(x.shape[:2]) < 384:
            return t.statistic(x, y, p, local)
        xs, ys = np.ascontiguousarray(x[::2, ::2]), np.ascontiguousarray(y[::2, ::2])
        small = {k: v for k, v in local.items() if k not in ("scene", "depth", "segments", "subject")}
        sc = local.get("scene")
        # only a depth-aware type's statistic reads depth: asking the scene for it otherwise costs the
        # layout analysis (and a subject and depth map) for nothing
        if "depth" in t.needs(p) and isinstance(sc, Scene) and sc.depth_form != "neutral":
            small["depth"] = sc.depth(xs.shape[:2])
        st = t.statistic(xs, ys, p, small)
        st["measured_stride"] = 2
        return st

    def degrade_one(self, image: np.ndarray, seed: int, aux: dict | None = None) -> DegradeResult:
        return self.degrade([image], [seed], [aux or {}])[0]

    def _local(self, aux: SampleAux | dict | None) -> dict:
        """The per-sample scene dict the types read: the pipeline's SampleAux (or a library caller's
        dict of depth / segments / second image), plus the run's partner images given at setup."""
        local = aux.as_dict() if isinstance(aux, SampleAux) else dict(aux or {})
        if self.partners is not None:
            local.setdefault("load_image", self.partners.load)
            if self.partners.num_samples is not None:
                local.setdefault("num_samples", self.partners.num_samples)
        return local

    def _run(self, image: np.ndarray, planned: tuple, local: dict) -> DegradeResult:
        plan, tail, substituted = planned
        names = [n for n, _ in plan]
        local["_partner_cache"] = {}
        needs: set[str] = set()
        for n, p in plan:
            needs |= self.types[n].needs(p)
        record: dict[str, Any] = {"chain": "realworld", "type": "+".join(names), "types": names,
                                  "stacked": len(names) > 1, "scale": 1}
        if substituted:
            record["substituted"] = substituted
        self.prepare_scene(image, needs, local)
        x = image
        ops = []
        stats = {}
        for n, p in plan:
            t = self.types[n]
            p.update(jsonable(t.bind(x if n != "flare" else image, p, local)))
            y = t.apply(x, p, local)
            stat = tidy(self._statistic(t, x, y, p, local)) if self.config.type_statistics else {}
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
        scene = self.scene_record(local, needs)
        for k in ("depth_source", "segments_source", "segments_count"):
            if k in scene:
                record[k] = scene[k]
        if scene:
            record["scene"] = scene
        strength = psnr_ssim(image, x) if self.config.measure_ssim else {"psnr": psnr(image, x)}
        strength["stats"] = stats
        record["strength"] = strength
        return DegradeResult(lq=np.ascontiguousarray(x), params=tidy(record))
