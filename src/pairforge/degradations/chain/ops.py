"""The operations a degradation chain is made of: each is a pydantic model (every range a field) that
samples its parameters per sample (:meth:`sample`) and applies them to a batch (:meth:`apply`).

Sampling and applying are separate so that a sample's whole plan (every random draw) is fixed before any
pixel is touched: the plan is the JSON record, and applying a plan is deterministic. ``sample`` appends
:class:`Step` objects to the plan; composite ops (``one_of``, ``sequence``) append their children's.

Every concrete op applies its parameters two ways: :meth:`OpBase.apply_np` to one H x W x C float32 numpy
image (the CPU path: numpy/OpenCV, torch is never imported) and :meth:`OpBase.apply` to a (B, C, H, W)
tensor batch (the CUDA path: samples in lockstep, same-shape steps batched).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import BeforeValidator, Field, PrivateAttr, model_validator

from pairforge.configbase import StrictModel
from pairforge.degradations import kernels

if TYPE_CHECKING:  # torch loads only when a chain runs on CUDA, not when a config is validated
    import torch

RESIZE_MODES = ("area", "bilinear", "bicubic")

_ANGLE = re.compile(r"^\s*(-?)\s*(\d*\.?\d*)\s*\*?\s*pi\s*(?:/\s*(\d+\.?\d*))?\s*$")


def _angle(v: Any) -> Any:
    """Accept numbers or strings such as "pi", "-pi", "pi/3", "2*pi/3" (kept readable in YAML)."""
    if isinstance(v, str):
        m = _ANGLE.match(v)
        if not m:
            raise ValueError(f"not an angle: {v!r} (use a number or forms like pi, -pi, pi/3, 2*pi/3)")
        sign, mult, div = m.groups()
        val = (float(mult) if mult else 1.0) * math.pi / (float(div) if div else 1.0)
        return -val if sign else val
    return v


Angle = Annotated[float, BeforeValidator(_angle)]
AngleRange = Annotated[tuple[Angle, Angle], Field()]
Prob = Annotated[float, Field(ge=0.0, le=1.0)]
Mode = Literal["area", "bilinear", "bicubic", "nearest"]


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _check_ranges(model: StrictModel) -> None:
    for name, info in type(model).model_fields.items():
        v = getattr(model, name)
        if isinstance(v, tuple) and len(v) == 2 and all(isinstance(a, (int, float)) for a in v) and v[0] > v[1]:
            raise ValueError(f"{name}: range [{v[0]}, {v[1]}] has lo > hi")


# --------------------------------------------------------------------------------------------------
# plan records


@dataclass
class Step:
    """One concrete operation of one sample's plan: the op config and its sampled parameters."""

    op: OpBase
    params: dict
    seq: int = 0  # position in the plan (for grouping on accelerators)


@dataclass
class SampleContext:
    """What an op may know while sampling one sample: its generator, sizes, and (batch_shared mode)
    the decisions the batch shares upstream."""

    rng: np.random.Generator
    hq_size: tuple[int, int]
    scale: int
    shared: dict | None = None  # decisions to reuse (batch_shared, not the first sample)
    record: dict = field(default_factory=dict)  # decisions this sample made
    batch_shared: bool = False
    steps: list[Step] = field(default_factory=list)
    #: the size ratio left between the current image and the LQ; a pre-shrink (``resize_to`` by a
    #: fraction) lowers it, and ops with ``by_scale`` switch to the ranges for the scale left
    scale_left: float = 0.0

    def __post_init__(self) -> None:
        if not self.scale_left:
            self.scale_left = float(self.scale)

    @property
    def lq_size(self) -> tuple[int, int]:
        return max(1, self.hq_size[0] // self.scale), max(1, self.hq_size[1] // self.scale)

    def pick(self, key: str, draw: Callable[[], Any]) -> Any:
        """A decision Real-ESRGAN shares across its batch: reused from the batch's first sample when
        ``batch_shared`` is on, else drawn from this sample's own generator."""
        if self.batch_shared and self.shared is not None and key in self.shared:
            return self.shared[key]
        v = draw()
        self.record[key] = v
        return v

    def seed(self) -> int:
        return int(self.rng.integers(0, 2**63 - 1))


def _uniform(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1])) if r[0] < r[1] else float(r[0])


class Env:
    """Execution settings shared by every op of a chain (not sampled)."""

    def __init__(self, jpeg_backend: str = "libjpeg", resize_grid: str = "registered"):
        self.jpeg_backend = jpeg_backend
        self.resize_grid = resize_grid


# --------------------------------------------------------------------------------------------------
# base


class OpBase(StrictModel):
    name: str | None = Field(None, description="unique name within the chain (for `set:` overrides and records)")
    prob: Prob = Field(1.0, description="probability that the op runs at all")
    by_scale: dict[int, dict[str, Any]] = Field(
        default_factory=dict,
        description="field overrides used when the size ratio left to the LQ is this key, e.g. BSRGAN's "
        "sf-2 ranges after its half-size pre-shrink: {2: {down_range: [0.25, 1.0]}} (not on one_of/sequence)",
    )

    #: composite ops (one_of, sequence) only choose; their children do the work
    composite: ClassVar[bool] = False
    _at_scale: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _ranges(self):
        _check_ranges(self)
        if self.by_scale and self.composite:
            raise ValueError(f"{self.op}: by_scale is for concrete ops, not one_of/sequence (set it on their ops)")
        for k in self.by_scale:
            if k < 1:
                raise ValueError(f"by_scale: keys are the scale left to the LQ (>= 1), got {k}")
            self.at_scale(k)  # an invalid override fails here, at validation
        return self

    def at_scale(self, scale_left: float) -> OpBase:
        """This op with the ``by_scale`` overrides for ``scale_left`` (itself when there are none)."""
        key = int(round(scale_left))
        if abs(scale_left - key) > 1e-9 or key not in self.by_scale:
            return self
        if key not in self._at_scale:
            data = self.model_dump()
            data["by_scale"] = {}
            self._at_scale[key] = type(self).model_validate(_merge(data, self.by_scale[key]))
        return self._at_scale[key]

    def children(self) -> list[OpBase]:
        return []

    def sample(self, ctx: SampleContext) -> None:
        """Append this op's concrete steps (with all sampled parameters) to ``ctx.steps``."""
        applied = True
        if self.prob < 1.0:
            gate = lambda: bool(ctx.rng.random() < self.prob)
            applied = ctx.pick(f"{self.name}.applied", gate) if self._gate_is_shared() else gate()
        if not applied:
            ctx.steps.append(Step(self, {"op": self.op, "name": self.name, "applied": False}))
            return
        op = self.at_scale(ctx.scale_left)
        params = {"op": self.op, "name": self.name, "applied": True}
        if op is not self:
            params["at_scale"] = int(round(ctx.scale_left))
        params.update(op.draw(ctx))
        ctx.steps.append(Step(op, params))

    def _gate_is_shared(self) -> bool:
        """Whether Real-ESRGAN draws this op's on/off gate once per batch (used in batch_shared mode)."""
        return True

    def draw(self, ctx: SampleContext) -> dict:
        """The op's sampled parameters (JSON-serialisable)."""
        return {}

    def group_key(self, params: dict) -> Any:
        """Samples whose next steps have equal keys (and equal image shapes) may run as one batch."""
        return None

    def apply(self, x: torch.Tensor, params: list[dict], env: Env) -> torch.Tensor:
        """Apply the op to a batch with the parameters ``draw`` made; every concrete op overrides this
        (OpBase is a pydantic model, so it cannot be an ``abc.ABC`` inside the ops union)."""
        raise NotImplementedError(f"op {type(self).__name__} does not define apply()")

    def apply_np(self, a: np.ndarray, p: dict, env: Env) -> np.ndarray:
        """Apply the op to one H x W x C float32 image with the parameters ``draw`` made (numpy/OpenCV,
        the CPU path); records what it decided while running (``out_size``, ...) in ``p`` like ``apply``."""
        raise NotImplementedError(f"op {type(self).__name__} does not define apply_np()")


# --------------------------------------------------------------------------------------------------
# sharpening and blur


class UsmOp(OpBase):
    """Unsharp masking; Real-ESRGAN degrades the sharpened ground truth (and keeps the plain one as HQ)."""

    op: Literal["usm"] = "usm"
    weight: float = Field(0.5, ge=0)
    radius: int = Field(50, ge=1, description="Gaussian size (rounded up to odd; sigma from OpenCV's rule)")
    threshold: float = Field(10.0, ge=0, description="0-255 units")
    apply_to_hq: bool = Field(False, description="also return the sharpened image as the HQ (BSRGAN-plus)")

    def draw(self, ctx):
        return {"weight": self.weight, "radius": self.radius, "threshold": self.threshold}

    def apply(self, x, params, env):
        from pairforge.degradations import filtering

        return filtering.usm_sharpen(x, self.weight, self.radius, self.threshold)

    def apply_np(self, a, p, env):
        from pairforge.degradations import filtering

        return filtering.usm_np(a, self.weight, self.radius, self.threshold)


KernelType = Literal["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]


class KernelSampling(StrictModel):
    """How a random blur kernel is drawn (Real-ESRGAN's options; BasicSR formulas)."""

    sizes: list[int] = Field(default_factory=lambda: list(range(7, 22, 2)), min_length=1, description="odd sizes, uniform")
    sinc_prob: Prob = 0.1
    sinc_omega_small: AngleRange = Field((math.pi / 3, math.pi), description="sinc cutoff when size < sinc_small_below")
    sinc_omega_large: AngleRange = Field((math.pi / 5, math.pi), description="sinc cutoff otherwise")
    sinc_small_below: int = 13
    kernel_list: list[KernelType] = Field(default_factory=lambda: list(kernels.KERNEL_TYPES), min_length=1)
    kernel_prob: list[float] = Field(default_factory=lambda: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03])
    sigma_range: tuple[float, float] = Field((0.2, 3.0), description="sigma of iso kernels and of both aniso axes")
    aniso_variance_range: tuple[float, float] | None = Field(
        None, description="if set, aniso axes draw a variance here and use its sqrt (BSRGAN)"
    )
    rotation_range: AngleRange = (-math.pi, math.pi)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)

    @model_validator(mode="after")
    def _check(self):
        _check_ranges(self)
        if any(s < 1 or s % 2 != 1 for s in self.sizes):
            raise ValueError(f"sizes must be odd and positive, got {self.sizes}")
        if len(self.kernel_prob) != len(self.kernel_list):
            raise ValueError("kernel_prob must have one probability per kernel_list entry")
        if any(p < 0 for p in self.kernel_prob) or sum(self.kernel_prob) <= 0:
            raise ValueError("kernel_prob must be non-negative with a positive sum")
        return self

    def draw(self, rng: np.random.Generator) -> dict:
        size = int(self.sizes[int(rng.integers(len(self.sizes)))])
        if self.sinc_prob > 0 and rng.random() < self.sinc_prob:
            r = self.sinc_omega_small if size < self.sinc_small_below else self.sinc_omega_large
            return {"type": "sinc", "size": size, "omega": _uniform(rng, r)}
        p = np.asarray(self.kernel_prob, dtype=np.float64)
        t = self.kernel_list[int(rng.choice(len(p), p=p / p.sum()))]
        aniso = t.endswith("aniso")
        if aniso and self.aniso_variance_range is not None:
            sx = math.sqrt(_uniform(rng, self.aniso_variance_range))
            sy = math.sqrt(_uniform(rng, self.aniso_variance_range))
        else:
            sx = _uniform(rng, self.sigma_range)
            sy = _uniform(rng, self.sigma_range) if aniso else sx
        theta = _uniform(rng, self.rotation_range) if aniso else 0.0
        out = {"type": t, "size": size, "sigma_x": sx, "sigma_y": sy, "theta": theta}
        if t.startswith("generalized"):
            out["beta"] = kernels.draw_beta(rng, self.betag_range)
        elif t.startswith("plateau"):
            out["beta"] = kernels.draw_beta(rng, self.betap_range)
        return out


class BlurOp(OpBase):
    """Blur with a random kernel per sample (mixed Gaussian family or 2D sinc)."""

    op: Literal["blur"] = "blur"
    kernel: KernelSampling = KernelSampling()

    def _gate_is_shared(self) -> bool:
        # upstream draws sinc-only filters (the final sinc) per sample in the dataset, others per batch
        return self.kernel.sinc_prob < 1.0

    def draw(self, ctx):
        return {"kernel": self.kernel.draw(ctx.rng)}

    def apply(self, x, params, env):
        from pairforge.degradations import filtering

        return filtering.filter2d(x, [kernels.kernel_from_params(p["kernel"]) for p in params])

    def apply_np(self, a, p, env):
        from pairforge.degradations import filtering

        return filtering.filter_hwc(a, kernels.kernel_from_params(p["kernel"]))


# --------------------------------------------------------------------------------------------------
# resizing


class ResizeOp(OpBase):
    """Random up/down/keep resize (Real-ESRGAN). ``relative_to: current`` scales the current image;
    ``lq`` resizes to ``(H/scale*s, W/scale*s)`` of the original HQ size (Real-ESRGAN's second stage)."""

    op: Literal["resize"] = "resize"
    updown_prob: tuple[Prob, Prob, Prob] = Field((0.2, 0.7, 0.1), description="up, down, keep")
    up_range: tuple[float, float] = (1.0, 1.5)
    down_range: tuple[float, float] = (0.15, 1.0)
    down_draw: Literal["uniform", "reciprocal"] = Field(
        "uniform", description="reciprocal: s = 1/U(1/hi, 1/lo) (BSRGAN's 1/U(1, 2sf))"
    )
    small_image_side: int | None = Field(None, ge=1, description="short sides below this use small_image_down_range")
    small_image_down_range: tuple[float, float] | None = None
    modes: list[Mode] = Field(default_factory=lambda: list(RESIZE_MODES), min_length=1)
    relative_to: Literal["current", "lq"] = "current"
    antialias: bool = Field(False, description="antialiased bilinear/bicubic (upstream: off)")
    min_lq_fraction: float | None = Field(
        None, gt=0, description="never shrink below this fraction of the final LQ size (BSRGAN: 0.5, i.e. HQ/8 at sf 4)")

    @model_validator(mode="after")
    def _probs(self):
        if sum(self.updown_prob) <= 0:
            raise ValueError("updown_prob must have a positive sum")
        return self

    def draw(self, ctx):
        rng = ctx.rng
        p = np.asarray(self.updown_prob, dtype=np.float64)
        direction = ctx.pick(f"{self.name}.direction", lambda: ["up", "down", "keep"][int(rng.choice(3, p=p / p.sum()))])
        down = self.down_range
        if self.small_image_side and self.small_image_down_range and min(ctx.hq_size) < self.small_image_side:
            down = self.small_image_down_range

        def scale():
            if direction == "up":
                return _uniform(rng, self.up_range)
            if direction == "down":
                if self.down_draw == "reciprocal":
                    return 1.0 / _uniform(rng, (1.0 / down[1], 1.0 / max(down[0], 1e-6)))
                return _uniform(rng, down)
            return 1.0

        s = ctx.pick(f"{self.name}.scale", scale)
        mode = ctx.pick(f"{self.name}.mode", lambda: self.modes[int(rng.integers(len(self.modes)))])
        out = {"direction": direction, "scale": s, "mode": mode}
        if self.relative_to == "lq":
            lh, lw = ctx.hq_size[0] / ctx.scale, ctx.hq_size[1] / ctx.scale
            out["size"] = [max(1, int(lh * s)), max(1, int(lw * s))]
        if self.min_lq_fraction is not None:
            out["min_size"] = [max(1, math.ceil(n * self.min_lq_fraction)) for n in ctx.lq_size]
        return out

    def group_key(self, params):
        return (params["mode"], params["scale"], tuple(params.get("size") or ()))

    def _target(self, hw: tuple[int, int], p: dict) -> dict:
        """``size=`` or ``scale=`` for the resize of an image of ``hw`` with the drawn ``p``."""
        if "size" in p:
            return {"size": tuple(p["size"])}
        if "min_size" in p and any(int(n * p["scale"]) < m for n, m in zip(hw, p["min_size"])):
            return {"size": tuple(max(int(n * p["scale"]), m) for n, m in zip(hw, p["min_size"]))}
        return {"scale": p["scale"]}

    def apply(self, x, params, env):
        from pairforge.degradations.resize import resize

        p = params[0]
        y = resize(x, **self._target(tuple(x.shape[-2:]), p), mode=p["mode"], antialias=self.antialias, grid=env.resize_grid)
        for q in params:
            q["out_size"] = [int(y.shape[-2]), int(y.shape[-1])]
        return y

    def apply_np(self, a, p, env):
        from pairforge.degradations.resize import resize_hwc

        y = resize_hwc(a, **self._target(a.shape[:2], p), mode=p["mode"], antialias=self.antialias, grid=env.resize_grid)
        p["out_size"] = [int(y.shape[0]), int(y.shape[1])]
        return y


class ResizeToOp(OpBase):
    """Resize to an exact size: the final LQ size (HQ // scale), the HQ size, or a fraction of the
    current size."""

    op: Literal["resize_to"] = "resize_to"
    target: Literal["lq", "hq"] | float = "lq"
    modes: list[Mode] = Field(default_factory=lambda: list(RESIZE_MODES), min_length=1)
    antialias: bool = False

    def draw(self, ctx):
        mode = ctx.pick(f"{self.name}.mode", lambda: self.modes[int(ctx.rng.integers(len(self.modes)))])
        out: dict = {"mode": mode, "target": self.target}
        if self.target == "lq":
            out["size"] = list(ctx.lq_size)
        elif self.target == "hq":
            out["size"] = list(ctx.hq_size)
        else:  # a pre-shrink: later ops see the scale left to the LQ (BSRGAN's sf 4 -> 2)
            ctx.scale_left = ctx.scale_left * float(self.target)
        return out

    def group_key(self, params):
        return (params["mode"], tuple(params.get("size") or ()), params["target"])

    def _size(self, hw: tuple[int, int], p: dict) -> tuple[int, int]:
        from pairforge.degradations.resize import scaled_size

        return tuple(p["size"]) if "size" in p else scaled_size(hw[0], hw[1], float(self.target))

    def apply(self, x, params, env):
        from pairforge.degradations.resize import resize

        p = params[0]
        y = resize(x, size=self._size(tuple(x.shape[-2:]), p), mode=p["mode"], antialias=self.antialias, grid=env.resize_grid)
        for q in params:
            q["out_size"] = [int(y.shape[-2]), int(y.shape[-1])]
        return y

    def apply_np(self, a, p, env):
        from pairforge.degradations.resize import resize_hwc

        y = resize_hwc(a, size=self._size(a.shape[:2], p), mode=p["mode"], antialias=self.antialias, grid=env.resize_grid)
        p["out_size"] = [int(y.shape[0]), int(y.shape[1])]
        return y


class SubsampleOp(OpBase):
    """Shifted Gaussian blur then nearest subsampling by ``factor`` (BSRGAN's second downsampler).

    The kernel's shift puts each kept pixel at the centre of its ``factor x factor`` cell, so the result
    is on the input's grid when the sides are multiples of ``factor``. When they are not, upstream keeps
    ``ceil(n / factor)`` pixels that cover more than the input (a drift a later exact-size resize
    stretches over the frame); on the registered grid the centred blur is resampled (bilinear, size
    ratio) at the cell centres of ``round(n / factor)`` cells spanning exactly the input."""

    op: Literal["subsample"] = "subsample"
    factor: int = Field(4, ge=1)
    kernel_size: int = Field(25, ge=1)
    sigma_range: tuple[float, float] = (0.1, 2.4)

    def draw(self, ctx):
        return {"factor": self.factor, "kernel": {"type": "shifted_gaussian", "size": self.kernel_size,
                                                  "sigma": _uniform(ctx.rng, self.sigma_range),
                                                  "shift": (self.factor - 1) / 2}}

    def group_key(self, params):
        return params["factor"]

    def apply(self, x, params, env):
        from pairforge.degradations import filtering

        f = params[0]["factor"]
        h, w = x.shape[-2:]
        if env.resize_grid == "registered" and (h % f or w % f):
            from pairforge.degradations.resize import resize

            centred = [kernels.kernel_from_params({**p["kernel"], "shift": 0.0}) for p in params]
            size = (max(1, round(h / f)), max(1, round(w / f)))
            y = resize(filtering.filter2d(x, centred), size=size, mode="bilinear")
            for q in params:
                q["sampling"] = "centred_blur_bilinear"
        else:
            y = filtering.filter2d(x, [kernels.kernel_from_params(p["kernel"]) for p in params])
            y = y[:, :, ::f, ::f]
        for q in params:
            q["out_size"] = [int(y.shape[-2]), int(y.shape[-1])]
        return y

    def apply_np(self, a, p, env):
        from pairforge.degradations import filtering
        from pairforge.degradations.resize import resize_hwc

        f = p["factor"]
        h, w = a.shape[:2]
        if env.resize_grid == "registered" and (h % f or w % f):
            blurred = filtering.filter_hwc(a, kernels.kernel_from_params({**p["kernel"], "shift": 0.0}))
            y = resize_hwc(blurred, size=(max(1, round(h / f)), max(1, round(w / f))), mode="bilinear")
            p["sampling"] = "centred_blur_bilinear"
        else:
            y = np.ascontiguousarray(filtering.filter_hwc(a, kernels.kernel_from_params(p["kernel"]))[::f, ::f])
        p["out_size"] = [int(y.shape[0]), int(y.shape[1])]
        return y


# --------------------------------------------------------------------------------------------------
# noise


class GaussianNoiseOp(OpBase):
    """Additive (or, ``multiplicative``, speckle) Gaussian noise, sigma in 0-255 units: gray with
    ``gray_prob``, channel-correlated with ``correlated_prob`` (BSRGAN), else independent colour."""

    op: Literal["gaussian_noise"] = "gaussian_noise"
    sigma_range: tuple[float, float] = (1.0, 30.0)
    integer_sigma: bool = Field(False, description="draw an integer sigma in [lo, hi] (BSRGAN's randint)")
    gray_prob: Prob = 0.4
    correlated_prob: Prob = 0.0
    multiplicative: bool = False

    def draw(self, ctx):
        rng = ctx.rng
        if self.integer_sigma:
            sigma = float(rng.integers(int(self.sigma_range[0]), int(self.sigma_range[1]) + 1))
        else:
            sigma = _uniform(rng, self.sigma_range)
        u = rng.random()
        kind = "gray" if u < self.gray_prob else ("correlated" if u < self.gray_prob + self.correlated_prob else "color")
        out = {"sigma": sigma, "kind": kind, "multiplicative": self.multiplicative, "noise_seed": ctx.seed()}
        if kind == "correlated":
            out["cov"] = kernels.correlated_noise_cov(rng, sigma)
        return out

    def apply(self, x, params, env):
        from pairforge.degradations import noise

        return noise.gaussian_noise(
            x,
            [p["sigma"] for p in params],
            [p["kind"] for p in params],
            [p["noise_seed"] for p in params],
            [p.get("cov") for p in params],
            multiplicative=self.multiplicative,
        )

    def apply_np(self, a, p, env):
        from pairforge.degradations import noise

        return noise.gaussian_noise_hwc(a, p["sigma"], p["kind"], p["noise_seed"], p.get("cov"), self.multiplicative)


class PoissonNoiseOp(OpBase):
    """Shot noise: ``scale * (Poisson(q*vals)/vals - q)`` on the 8-bit-quantised image (or its luma)."""

    op: Literal["poisson_noise"] = "poisson_noise"
    scale_range: tuple[float, float] = (0.05, 3.0)
    gray_prob: Prob = 0.4
    vals_log10_range: tuple[float, float] | None = Field(
        None, description="photon scale 10**U(range) (BSRGAN); None: next power of two above the distinct values (BasicSR)"
    )

    def draw(self, ctx):
        rng = ctx.rng
        out = {"scale": _uniform(rng, self.scale_range), "gray": bool(rng.random() < self.gray_prob), "noise_seed": ctx.seed()}
        if self.vals_log10_range is not None:
            out["vals"] = 10.0 ** _uniform(rng, self.vals_log10_range)
        return out

    def apply(self, x, params, env):
        from pairforge.degradations import noise

        y, used = noise.poisson_noise(
            x, [p["scale"] for p in params], [p["gray"] for p in params], [p["noise_seed"] for p in params],
            [p.get("vals") for p in params],
        )
        for q, v in zip(params, used):
            q["vals"] = v
        return y

    def apply_np(self, a, p, env):
        from pairforge.degradations import noise

        y, p["vals"] = noise.poisson_noise_hwc(a, p["scale"], p["gray"], p["noise_seed"], p.get("vals"))
        return y


# --------------------------------------------------------------------------------------------------
# compression


class JpegOp(OpBase):
    """JPEG at a random quality (input clamped to [0, 1]). The chain's ``jpeg_backend`` decides between
    a real libjpeg encoder (quality rounded to an integer) and the DiffJPEG-compatible model."""

    op: Literal["jpeg"] = "jpeg"
    quality_range: tuple[float, float] = (30.0, 95.0)
    integer_quality: bool = Field(False, description="draw an integer quality in [lo, hi] (BSRGAN's randint)")

    @model_validator(mode="after")
    def _q(self):
        if not (1 <= self.quality_range[0] <= self.quality_range[1] <= 100):
            raise ValueError(f"quality_range must lie in [1, 100], got {list(self.quality_range)}")
        return self

    def draw(self, ctx):
        if self.integer_quality:
            q = float(ctx.rng.integers(int(self.quality_range[0]), int(self.quality_range[1]) + 1))
        else:
            q = _uniform(ctx.rng, self.quality_range)
        return {"quality_drawn": q}

    def group_key(self, params):
        return None

    def apply(self, x, params, env):
        from pairforge.degradations import (
            jpeg,  # both backends clamp their input to [0, 1]
        )

        for p in params:
            p["backend"] = env.jpeg_backend
        if env.jpeg_backend == "diffjpeg":
            for p in params:
                p["quality"] = p["quality_drawn"]
            return jpeg.diffjpeg(x, [p["quality"] for p in params])
        for p in params:
            p["quality"] = int(min(100, max(1, round(p["quality_drawn"]))))
        return jpeg.jpeg_libjpeg(x, [p["quality"] for p in params])

    def apply_np(self, a, p, env):
        from pairforge.degradations import jpeg

        p["backend"] = env.jpeg_backend
        if env.jpeg_backend == "diffjpeg":
            p["quality"] = p["quality_drawn"]
            return jpeg.diffjpeg_hwc(a, p["quality"])
        p["quality"] = int(min(100, max(1, round(p["quality_drawn"]))))
        return jpeg.jpeg_hwc(a, p["quality"])


# --------------------------------------------------------------------------------------------------
# composition


class OneOfOp(OpBase):
    """Runs exactly one of ``ops`` (chosen with ``probs``), e.g. Gaussian or Poisson noise."""

    op: Literal["one_of"] = "one_of"
    composite: ClassVar[bool] = True
    probs: list[float] | None = Field(None, description="default: uniform")
    ops: list[Op] = Field(min_length=1)

    @model_validator(mode="after")
    def _probs(self):
        if self.probs is not None and (len(self.probs) != len(self.ops) or any(p < 0 for p in self.probs) or sum(self.probs) <= 0):
            raise ValueError("probs must give one non-negative weight per op, with a positive sum")
        return self

    def children(self):
        return list(self.ops)

    def sample(self, ctx):
        if self.prob < 1.0 and not ctx.pick(f"{self.name}.applied", lambda: bool(ctx.rng.random() < self.prob)):
            ctx.steps.append(Step(self, {"op": self.op, "name": self.name, "applied": False}))
            return
        p = np.asarray(self.probs or [1.0] * len(self.ops), dtype=np.float64)
        i = ctx.pick(f"{self.name}.choice", lambda: int(ctx.rng.choice(len(p), p=p / p.sum())))
        ctx.steps.append(Step(self, {"op": self.op, "name": self.name, "applied": True, "choice": self.ops[i].name}))
        self.ops[i].sample(ctx)


class SequenceOp(OpBase):
    """Runs ``ops`` in an order that is ``fixed``, ``shuffle``d (BSRGAN) or one of ``choices``
    (Real-ESRGAN's two final orders). With ``shuffle``: a full random permutation with probability
    ``shuffle_prob``, else the listed order with each ``local_shuffle`` group permuted within itself;
    afterwards every pair [a, b] of ``keep_before`` is swapped back if b ended up before a."""

    op: Literal["sequence"] = "sequence"
    composite: ClassVar[bool] = True
    ops: list[Op] = Field(min_length=1)
    order: Literal["fixed", "shuffle", "choice"] = "fixed"
    choices: list[list[int]] | None = Field(None, description="for order=choice: candidate orders (op indices), uniform")
    shuffle_prob: Prob = 1.0
    local_shuffle: list[list[int]] = Field(default_factory=list)
    keep_before: list[tuple[int, int]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self):
        n = len(self.ops)
        idx = lambda lst: all(0 <= i < n for i in lst)
        if self.order == "choice":
            if not self.choices or not all(idx(c) and len(c) > 0 for c in self.choices):
                raise ValueError(f"order=choice needs choices: lists of op indices in [0, {n - 1}]")
        if not all(idx(g) for g in self.local_shuffle) or not all(idx(p) for p in self.keep_before):
            raise ValueError(f"local_shuffle and keep_before must use op indices in [0, {n - 1}]")
        return self

    def children(self):
        return list(self.ops)

    def _draw_order(self, rng: np.random.Generator) -> list[int]:
        n = len(self.ops)
        if self.order == "fixed":
            return list(range(n))
        if self.order == "choice":
            return list(self.choices[int(rng.integers(len(self.choices)))])
        if rng.random() < self.shuffle_prob:
            order = [int(i) for i in rng.permutation(n)]
        else:
            order = list(range(n))
            for g in self.local_shuffle:
                perm = [g[int(i)] for i in rng.permutation(len(g))]
                for slot, op_index in zip(g, perm):
                    order[slot] = op_index
        for a, b in self.keep_before:
            ia, ib = order.index(a), order.index(b)
            if ib < ia:
                order[ia], order[ib] = order[ib], order[ia]
        return order

    def sample(self, ctx):
        if self.prob < 1.0 and not ctx.pick(f"{self.name}.applied", lambda: bool(ctx.rng.random() < self.prob)):
            ctx.steps.append(Step(self, {"op": self.op, "name": self.name, "applied": False}))
            return
        order = ctx.pick(f"{self.name}.order", lambda: self._draw_order(ctx.rng))
        ctx.steps.append(Step(self, {"op": self.op, "name": self.name, "applied": True, "order": [self.ops[i].name for i in order]}))
        for i in order:
            self.ops[i].sample(ctx)


Op = Annotated[
    UsmOp | BlurOp | ResizeOp | ResizeToOp | SubsampleOp | GaussianNoiseOp | PoissonNoiseOp | JpegOp | OneOfOp | SequenceOp,
    Field(discriminator="op"),
]
OneOfOp.model_rebuild()
SequenceOp.model_rebuild()


def walk(ops: list[OpBase]):
    """Every op of a tree, depth first."""
    for o in ops:
        yield o
        yield from walk(o.children())
