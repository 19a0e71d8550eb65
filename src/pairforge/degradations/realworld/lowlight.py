"""Low light: the scene photographed with far less light, through an inverted-then-replayed camera.

Physical model (unprocessing, after Brooks et al. 2019 and the MAET dark pipeline). An sRGB photo is
the output of a camera pipeline: raw sensor values -> demosaic -> white balance -> colour correction
(CCM) -> gamma -> tone curve. We invert it (inverse S-shaped tone curve, inverse gamma, inverse CCM,
inverse white-balance gains) to estimate the raw linear signal, keep one colour per pixel through a
Bayer colour filter array (the sensor measures one channel per photosite), and model the darker
exposure on that mosaic: multiply by ``exposure`` (photons scale linearly with light), add
heteroscedastic sensor noise with variance ``shot * x + read`` (shot and read noise follow a log-linear
relation measured on real sensors: ``log read = 2.18 log shot + 1.2 + N(0, 0.26)``), quantise with the
ADC's bit depth, then replay the camera: demosaic (OpenCV, bilinear or edge-aware: this is what turns
per-photosite noise into the blotchy, colour-correlated noise of real night shots), white balance with a
slightly wrong estimate (auto white balance fails in the dark: colour cast), CCM, gamma, tone curve.

Exposure is not a fixed factor: it is solved (on a small copy, without noise) so the LQ reaches a target
mean brightness drawn per severity; an already dark photo is darkened less, never to black. The output
stays dark: low-light enhancement is the restorer's job.
"""
from __future__ import annotations

from typing import ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field

from pairforge.configbase import FloatRange, IntRange
from pairforge.degradations.realworld.common import (
    RealWorldType,
    TypeConfig,
    _pow,
    integer,
    log_uniform,
    new_seed,
    require_rgb8,
    rnd,
    to_uint8,
    uniform,
    weighted_choice,
)
from pairforge.degradations.realworld.moire import CFA
from pairforge.degradations.realworld.strength import gray, relative_shadow_noise
from pairforge.registry import REALWORLD_TYPES


@REALWORLD_TYPES.register("low_light", type="pairforge.degradations.realworld.lowlight:LowLight", rank=70)
class LowLightConfig(TypeConfig):
    brightness: FloatRange | None = Field(None, description="target mean luma of the LQ (sRGB, 0-1)")
    shot: FloatRange | None = Field(None, description="shot-noise gain (log-uniform), raw units")
    bits: IntRange | None = Field(None, description="ADC bit depth")
    gamma: FloatRange = Field((2.0, 3.5), description="camera gamma inverted and re-applied")
    red_gain: FloatRange = (1.9, 2.4)
    blue_gain: FloatRange = (1.5, 1.9)
    wb_error: float = Field(0.12, ge=0.0, le=0.5, description="max relative error of the dark white balance")
    ccm_strength: FloatRange = Field((0.2, 0.7), description="off-diagonal mass of the random CCM")
    tone_curve_probability: float = Field(0.8, ge=0.0, le=1.0)

    demosaic: dict[Literal["bilinear", "edge_aware"], float] = Field(
        default_factory=lambda: {"bilinear": 1.0, "edge_aware": 1.0}, description="OpenCV demosaicing")

    LEVELS: ClassVar[dict] = {
        "light": {"brightness": (0.22, 0.3), "shot": (2e-4, 8e-4), "bits": (11, 14)},
        "medium": {"brightness": (0.13, 0.2), "shot": (5e-4, 2e-3), "bits": (10, 12)},
        "heavy": {"brightness": (0.07, 0.12), "shot": (8e-4, 3e-3), "bits": (10, 12)},
    }


def random_ccm(rng: np.random.Generator, strength: float) -> np.ndarray:
    """A camera-to-sRGB colour correction matrix: diagonal > 1, negative off-diagonals, rows sum to 1."""
    m = np.zeros((3, 3))
    for i in range(3):
        share = rng.dirichlet([2.0, 2.0])
        others = [j for j in range(3) if j != i]
        m[i, others] = -strength * share
        m[i, i] = 1.0 + strength
    return m


def smoothstep(x: np.ndarray) -> np.ndarray:
    return 3 * x * x - 2 * x * x * x


def inverse_smoothstep(y: np.ndarray) -> np.ndarray:
    y = np.clip(y, 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)


class LowLight(RealWorldType):
    name = "low_light"
    config_cls = LowLightConfig

    def _sample(self, rng, level):
        c = self.config
        shot = log_uniform(rng, c.range("shot", level))
        read = float(np.exp(2.18 * np.log(shot) + 1.2 + rng.normal(scale=0.26)))
        ccm = random_ccm(rng, uniform(rng, c.ccm_strength))
        gains = [uniform(rng, c.red_gain), 1.0, uniform(rng, c.blue_gain)]
        err = [1.0 + uniform(rng, (-c.wb_error, c.wb_error)), 1.0, 1.0 + uniform(rng, (-c.wb_error, c.wb_error))]
        return {
            "brightness": uniform(rng, c.range("brightness", level)),
            "cfa": weighted_choice(rng, {k: 1.0 for k in CFA}),
            "demosaic": weighted_choice(rng, c.demosaic),
            "shot": shot,
            "read": read,
            "bits": integer(rng, c.range("bits", level)),
            "gamma": uniform(rng, c.gamma),
            "tone_curve": bool(rng.random() < c.tone_curve_probability),
            "wb_gains": [rnd(g) for g in gains],
            "wb_error": [rnd(e) for e in err],
            "ccm": [[rnd(v) for v in row] for row in ccm],
            "seed": new_seed(rng),
        }

    def unprocess(self, image: np.ndarray, params: dict) -> np.ndarray:
        """uint8 sRGB -> estimated raw linear RGB (inverse tone and gamma by a 256-entry table, then
        inverse CCM and white balance as one 3 x 3 matrix)."""
        v = np.arange(256, dtype=np.float64) / 255.0
        if params["tone_curve"]:
            v = inverse_smoothstep(v)
        lut = np.power(np.clip(v, 0, 1), params["gamma"]).astype(np.float32)
        x = lut[image]
        m = np.diag(1.0 / np.asarray(params["wb_gains"], np.float64)) @ np.linalg.inv(np.asarray(params["ccm"], np.float64))
        return np.clip(cv2.transform(x, m.astype(np.float32)), 0.0, 1.0)

    def process(self, raw: np.ndarray, params: dict) -> np.ndarray:
        """Raw linear RGB -> sRGB float with the (imperfect) dark white balance."""
        wb = np.asarray(params["wb_gains"], np.float64) * np.asarray(params["wb_error"], np.float64)
        m = (np.asarray(params["ccm"], np.float64) @ np.diag(wb)).astype(np.float32)
        x = np.clip(cv2.transform(np.ascontiguousarray(raw, dtype=np.float32), m), 0.0, 1.0)
        x = _pow(x, 1.0 / params["gamma"])
        return smoothstep(x) if params["tone_curve"] else x

    def exposure(self, image: np.ndarray, params: dict) -> float:
        """The light reduction that brings the noiseless LQ's mean luma to ``brightness`` (bisection
        on a 48 px copy; at most 1: a photo darker than the target keeps its exposure)."""
        h, w = image.shape[:2]
        f = min(1.0, 48.0 / min(h, w))
        small = cv2.resize(image, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA)
        raw = self.unprocess(small, params)
        luma = lambda e: float(gray(self.process(raw * e, params)).mean())
        target = params["brightness"]
        if luma(1.0) <= target:
            return 1.0
        lo, hi = 1e-4, 1.0
        for _ in range(22):  # luma is monotone in the exposure: bisection in log space
            mid = float(np.sqrt(lo * hi))
            if luma(mid) < target:
                lo = mid
            else:
                hi = mid
        return float(np.sqrt(lo * hi))

    def bind(self, image, params, aux):
        return {"exposure": rnd(self.exposure(image, params), 6)}

    def apply(self, image, params, aux=None):
        require_rgb8(image)
        h, w = image.shape[:2]
        raw = self.unprocess(image, params)
        exposure = params["exposure"] if "exposure" in params else self.exposure(image, params)
        # the sensor: one colour per photosite (Bayer), less light, shot + read noise, the ADC
        layout = CFA[params["cfa"]]
        chan = np.empty((h, w), dtype=np.intp)
        chan[0::2, 0::2], chan[0::2, 1::2] = layout[0]
        chan[1::2, 0::2], chan[1::2, 1::2] = layout[1]
        mosaic = np.take_along_axis(raw, chan[..., None], axis=2)[..., 0] * np.float32(exposure)
        rng = np.random.Generator(np.random.PCG64(params["seed"]))
        std = np.sqrt(params["shot"] * np.maximum(mosaic, 0.0) + params["read"]).astype(np.float32)
        mosaic = mosaic + rng.standard_normal(size=mosaic.shape, dtype=np.float32) * std
        levels = 2 ** int(params["bits"]) - 1
        code = np.clip(np.rint(np.clip(mosaic, 0.0, 1.0) * levels), 0, levels)
        # demosaic at 16 bits (the ADC codes scaled), then the camera pipeline
        m16 = (code * (65535.0 / levels)).astype(np.uint16)
        rgb = cv2.cvtColor(m16, layout[2] if params["demosaic"] == "bilinear" else layout[3])
        return to_uint8(self.process(rgb.astype(np.float32) / 65535.0, params))

    def statistic(self, hq, lq, params, aux=None):
        g0, g1 = gray(hq), gray(lq)
        shadow = g0 <= np.quantile(g0, 0.3)
        return {
            "luminance_ratio": float(g1.mean() / max(g0.mean(), 1e-6)),
            "shadow_noise": relative_shadow_noise(lq, shadow),
            "shadow_noise_hq": relative_shadow_noise(hq, shadow),
        }
