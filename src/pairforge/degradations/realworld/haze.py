"""Haze: atmospheric scattering that grows with distance.

Physical model (Koschmieder / the atmospheric scattering model). Light from a scene point at distance
``d`` is attenuated by scattering, ``t = exp(-beta d)``, and the same scattering adds ambient light (the
airlight ``A``) in proportion to what is lost: ``I = J t + A (1 - t)``, applied in linear light. Depth
comes normalised to [0, 1] from the configured provider (a monocular depth network) or the explicit prior,
so it is shaped by an exponent ``gamma`` (``t = exp(-beta d^gamma)``, reference practice) that stands in
for the unknown metric scale. Fog is seldom homogeneous: ``beta`` is modulated by a smooth random field
(``heterogeneity``). ``t`` is slightly blurred (depth maps are not pixel exact at edges) and clipped to
[t_min, 1]. The airlight is bright grey with a slight blue bias and per-channel jitter, brighter for
thicker haze.
"""
from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np
from pydantic import Field

from pairforge.configbase import FloatRange
from pairforge.degradations.realworld.common import (
    RealWorldType,
    TypeConfig,
    check_image,
    gaussian,
    image_to_linear,
    linear_to_srgb,
    new_seed,
    rnd,
    srgb_to_linear,
    to_uint8,
    uniform,
)
from pairforge.degradations.realworld.depth import scene_depth
from pairforge.degradations.realworld.strength import gray, local_std
from pairforge.registry import REALWORLD_TYPES


@REALWORLD_TYPES.register("haze", type="pairforge.degradations.realworld.haze:Haze", rank=10)
class HazeConfig(TypeConfig):
    beta: FloatRange | None = Field(None, description="scattering coefficient per unit normalised depth")
    gamma: FloatRange = Field((1.0, 2.0), description="depth exponent")
    airlight: FloatRange = Field((0.78, 0.95), description="airlight grey level (sRGB)")
    heterogeneity: FloatRange = Field((0.0, 0.4), description="relative amplitude of beta's variation")
    t_min: float = Field(0.05, ge=0.0, lt=1.0)

    LEVELS: ClassVar[dict] = {
        "light": {"beta": (0.3, 0.7)},
        "medium": {"beta": (0.7, 1.3)},
        "heavy": {"beta": (1.3, 2.4)},
    }


def smooth_field(shape: tuple[int, int], seed: int, scale: float) -> np.ndarray:
    """A smooth random field in [-1, 1] with features of ``scale`` x the short side."""
    h, w = shape
    rng = np.random.Generator(np.random.PCG64(seed))
    g = max(2, round(1.0 / max(scale, 1e-3)) + 1)
    coarse = rng.uniform(-1, 1, size=(g, g)).astype(np.float32)
    f = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(f / max(np.abs(f).max(), 1e-6), -1, 1)


class Haze(RealWorldType):
    name = "haze"
    config_cls = HazeConfig

    def _sample(self, rng, level):
        c = self.config
        lo, hi = c.range("beta", level)
        beta = uniform(rng, (lo, hi))
        pos = (beta - lo) / max(hi - lo, 1e-9)
        a_lo, a_hi = c.airlight
        base = a_lo + (a_hi - a_lo) * (0.5 * pos + 0.5 * rng.random())
        a = np.clip(base + rng.normal(scale=0.015, size=3) + np.array([0.0, 0.0, rng.uniform(0, 0.03)]), 0.7, 1.0)
        return {
            "beta": beta,
            "gamma": uniform(rng, c.gamma),
            "airlight": [rnd(v, 5) for v in a],
            "heterogeneity": uniform(rng, c.heterogeneity),
            "hetero_scale": uniform(rng, (0.2, 0.5)),
            "hetero_seed": new_seed(rng),
            "t_blur": 0.004,
            "t_min": c.t_min,
        }

    def needs(self, params):
        return {"depth"}

    def transmission(self, image: np.ndarray, params: dict, aux: dict | None) -> np.ndarray:
        h, w = image.shape[:2]
        d = scene_depth(image, aux)
        beta = params["beta"] * (1.0 + params["heterogeneity"] * smooth_field(
            (h, w), params["hetero_seed"], params["hetero_scale"]))
        t = np.exp(-beta * np.power(d, params["gamma"])).astype(np.float32)
        t = gaussian(t, params["t_blur"] * min(h, w))
        return np.clip(t, params["t_min"], 1.0)

    def apply(self, image, params, aux=None):
        check_image(image)
        j = image_to_linear(image)
        t = self.transmission(image, params, aux)[..., None]
        a = srgb_to_linear(np.asarray(params["airlight"], dtype=np.float32))
        return to_uint8(linear_to_srgb(j * t + a * (1.0 - t)))

    def statistic(self, hq, lq, params, aux=None):
        g0, g1 = gray(hq), gray(lq)
        d = scene_depth(hq, aux)
        size = max(3, min(hq.shape[:2]) // 16 | 1)
        c0, c1 = local_std(g0, size), local_std(g1, size)
        far, near = d >= np.quantile(d, 0.7), d <= np.quantile(d, 0.3)
        ratio = lambda m: float(c1[m].mean() / max(c0[m].mean(), 1e-6))
        return {
            "mean_transmission": float(self.transmission(hq, params, aux).mean()),
            "contrast_ratio": ratio(np.ones_like(d, dtype=bool)),
            "contrast_ratio_far": ratio(far),
            "contrast_ratio_near": ratio(near),
        }
