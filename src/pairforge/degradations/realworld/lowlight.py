"""Low light: the scene photographed with far less light, through an inverted-then-replayed camera.

Physical model (unprocessing, after Brooks et al. 2019 and the MAET dark pipeline). An sRGB photo is
the output of a camera pipeline: raw sensor values -> white balance -> colour correction (CCM) ->
gamma -> tone curve. We invert it (inverse S-shaped tone curve, inverse gamma, inverse CCM, inverse
white-balance gains) to get an estimate of the raw linear signal, then model the darker exposure:
multiply by ``exposure`` (photons scale linearly with light), add heteroscedastic sensor noise with
variance ``shot * x + read`` (shot and read noise follow a log-linear relation measured on real
sensors: ``log read = 2.18 log shot + 1.2 + N(0, 0.26)``), quantise with the ADC's bit depth (in the
dark, few levels are used: banding), and replay the camera pipeline with a slightly wrong white balance
(auto white balance fails in the dark: colour cast). The output stays dark: low-light enhancement is the
restorer's job. The CCM is a random near-identity matrix with unit row sums (typical of camera CCMs).
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from pairforge.configbase import FloatRange, IntRange
from pairforge.degradations.realworld.common import (
    RealWorldType,
    TypeConfig,
    check_image,
    integer,
    log_uniform,
    new_seed,
    rnd,
    to_float,
    to_uint8,
    uniform,
)
from pairforge.degradations.realworld.strength import gray, relative_shadow_noise
from pairforge.registry import REALWORLD_TYPES


@REALWORLD_TYPES.register("low_light", type="pairforge.degradations.realworld.lowlight:LowLight", rank=70)
class LowLightConfig(TypeConfig):
    exposure: FloatRange | None = Field(None, description="light reduction factor (linear)")
    shot: FloatRange | None = Field(None, description="shot-noise gain (log-uniform), raw units")
    bits: IntRange | None = Field(None, description="ADC bit depth")
    gamma: FloatRange = Field((2.0, 3.5), description="camera gamma inverted and re-applied")
    red_gain: FloatRange = (1.9, 2.4)
    blue_gain: FloatRange = (1.5, 1.9)
    wb_error: float = Field(0.12, ge=0.0, le=0.5, description="max relative error of the dark white balance")
    ccm_strength: FloatRange = Field((0.2, 0.7), description="off-diagonal mass of the random CCM")
    tone_curve_probability: float = Field(0.8, ge=0.0, le=1.0)

    LEVELS: ClassVar[dict] = {
        "light": {"exposure": (0.15, 0.35), "shot": (1e-4, 8e-4), "bits": (11, 14)},
        "medium": {"exposure": (0.05, 0.15), "shot": (8e-4, 3e-3), "bits": (10, 12)},
        "heavy": {"exposure": (0.015, 0.05), "shot": (3e-3, 1e-2), "bits": (9, 11)},
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
            "exposure": uniform(rng, c.range("exposure", level)),
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

    def apply(self, image, params, aux=None):
        check_image(image)
        x = to_float(image).astype(np.float64)
        ccm = np.asarray(params["ccm"], dtype=np.float64)
        gains = np.asarray(params["wb_gains"], dtype=np.float64)
        # inverse camera pipeline: tone -> gamma -> CCM -> white balance
        if params["tone_curve"]:
            x = inverse_smoothstep(x)
        x = np.power(np.clip(x, 0, 1), params["gamma"])
        x = x @ np.linalg.inv(ccm).T
        x = np.clip(x / gains, 0.0, 1.0)
        # less light, sensor noise, ADC
        x = x * params["exposure"]
        rng = np.random.Generator(np.random.PCG64(params["seed"]))
        var = params["shot"] * x + params["read"]
        x = x + rng.normal(size=x.shape) * np.sqrt(var)
        levels = 2 ** int(params["bits"]) - 1
        x = np.clip(np.rint(np.clip(x, 0, 1) * levels) / levels, 0.0, 1.0)
        # forward pipeline with the (imperfect) dark white balance
        x = x * gains * np.asarray(params["wb_error"])
        x = np.clip(x @ ccm.T, 0.0, 1.0)
        x = np.power(x, 1.0 / params["gamma"])
        if params["tone_curve"]:
            x = smoothstep(x)
        return to_uint8(x)

    def statistic(self, hq, lq, params, aux=None):
        g0, g1 = gray(hq), gray(lq)
        shadow = g0 <= np.quantile(g0, 0.3)
        return {
            "luminance_ratio": float(g1.mean() / max(g0.mean(), 1e-6)),
            "shadow_noise": relative_shadow_noise(lq, shadow),
            "shadow_noise_hq": relative_shadow_noise(hq, shadow),
        }
