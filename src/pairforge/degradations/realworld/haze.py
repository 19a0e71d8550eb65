"""Haze: atmospheric scattering that grows with distance.

Physical model (Koschmieder / the atmospheric scattering model). Light from a scene point at distance
``d`` is attenuated by scattering, ``t = exp(-beta d)``, and the same scattering adds ambient light (the
airlight ``A``) in proportion to what is lost: ``I = J t + A (1 - t)``, applied in linear light. Depth
comes normalised to [0, 1] from the configured provider (a monocular depth network) or the explicit prior,
so it is shaped by an exponent ``gamma`` (``t = exp(-beta d^gamma)``, reference practice) that stands in
for the unknown metric scale. Fog is seldom homogeneous: ``beta`` is modulated by a smooth random field
(``heterogeneity``). ``t`` is slightly blurred (depth maps are not pixel exact at edges) and clipped to
[t_min, 1]. The airlight is bright grey with a slight blue bias and per-channel jitter, brighter for
thicker haze. Light sources glow: scattering spreads the light of bright, near-saturated sources into a
wide halo (the atmospheric point spread function), in proportion to the haze along the way.

Depth forms (from :mod:`.scene`, recorded as ``depth_form``): with a measured depth or an outdoor layout
the haze grows with depth over the scene's range (far parts reach ``exp(-beta)``); without a usable cue
(close-ups, portraits, indoor) the haze is near-uniform, at the strength of a mid-depth scene, varying
only by the heterogeneity field: a made-up depth would put the densest fog on a face.
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
    gaussian,
    image_to_linear,
    linear_to_uint8,
    new_seed,
    require_rgb8,
    rnd,
    srgb_to_linear,
    uniform,
)
from pairforge.degradations.realworld.scene import guided_filter, scene_of
from pairforge.degradations.realworld.strength import gray, local_std
from pairforge.registry import REALWORLD_TYPES


@REALWORLD_TYPES.register("haze", type="pairforge.degradations.realworld.haze:Haze", rank=10)
class HazeConfig(TypeConfig):
    beta: FloatRange | None = Field(None, description="scattering coefficient per unit normalised depth")
    gamma: FloatRange = Field((1.0, 2.0), description="depth exponent")
    airlight: FloatRange = Field((0.78, 0.95), description="airlight grey level (sRGB)")
    heterogeneity: FloatRange = Field((0.0, 0.4), description="relative amplitude of beta's variation")
    t_min: float = Field(0.05, ge=0.0, lt=1.0)
    neutral_depth: float = Field(0.55, ge=0.0, le=1.0, description="effective depth of the uniform haze "
                                 "used when the scene has no usable depth cue")
    glow: FloatRange = Field((0.5, 1.5), description="strength of the glow around light sources")

    LEVELS: ClassVar[dict] = {
        "light": {"beta": (0.12, 0.3)},
        "medium": {"beta": (0.3, 0.7)},
        "heavy": {"beta": (0.7, 1.4)},
    }


def smooth_field(shape: tuple[int, int], seed: int, scale: float) -> np.ndarray:
    """A smooth random field in [-1, 1] with features of ``scale`` x the short side."""
    h, w = shape
    rng = np.random.Generator(np.random.PCG64(seed))
    g = max(2, round(1.0 / max(scale, 1e-3)) + 1)
    coarse = rng.uniform(-1, 1, size=(g, g)).astype(np.float32)
    f = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(f / max(np.abs(f).max(), 1e-6), -1, 1)


def source_glow(lin: np.ndarray, strength: float) -> np.ndarray | None:
    """Forward scattering around light sources: the light above 85% of full scale, spread by two wide
    Gaussians (a narrow aureole and a wide halo), at <= 128 px; None when nothing is that bright (no
    source, no glow). Only compact sources glow at full strength: a bright sky or wall scatters too, but
    its glow is its own haze, already in the airlight, so the gain falls with the bright area."""
    if strength <= 0:
        return None
    h, w = lin.shape[:2]
    f = min(1.0, 128.0 / min(h, w))
    small = cv2.resize(lin, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA) \
        if f < 1 else lin
    excess = np.maximum(small - 0.85, 0.0)
    if float(excess.max()) <= 0.0:
        return None
    frac = float((excess.max(axis=2) > 0).mean())
    s = min(small.shape[:2])
    gain = min(1.0, 0.01 / max(frac, 1e-6))
    g = gain * (2.0 * gaussian(excess, 0.02 * s) + 1.0 * gaussian(excess, 0.07 * s))
    if f < 1:
        g = cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR)
    return (strength * g).astype(np.float32)


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
            "glow": uniform(rng, c.glow),
        }

    def needs(self, params):
        return {"depth"}

    def bind(self, image, params, aux):
        sc = scene_of(image, aux)
        return {"depth_form": sc.depth_form}

    def depth(self, image: np.ndarray, params: dict, aux: dict | None,
              shape: tuple[int, int] | None = None) -> np.ndarray:
        """The depth the haze uses (at ``shape``, default the image's): the scene's, or the uniform
        neutral depth."""
        h, w = shape or image.shape[:2]
        form = params.get("depth_form") or scene_of(image, aux).depth_form
        if form == "neutral":
            return np.full((h, w), self.config.neutral_depth, np.float32)
        return scene_of(image, aux).depth((h, w))

    def transmission(self, image: np.ndarray, params: dict, aux: dict | None) -> np.ndarray:
        h, w = image.shape[:2]
        # smooth fields: computed at <= 128 px and upsampled (the depth too: asking the scene for it at
        # that size skips a full-size map that would only be shrunk again)
        f = min(1.0, 128.0 / min(h, w))
        sh, sw = max(8, round(h * f)), max(8, round(w * f))
        field = smooth_field((sh, sw), params["hetero_seed"], params["hetero_scale"])
        dd = self.depth(image, params, aux, (sh, sw))
        beta = params["beta"] * (1.0 + params["heterogeneity"] * field)
        t = np.exp(-beta * np.power(dd, params["gamma"])).astype(np.float32)
        t = gaussian(t, params["t_blur"] * min(sh, sw))
        if params.get("depth_form", "neutral") != "neutral":
            # a depth map's steps are a pixel or two off the image's edges: a near subject would keep a
            # clear (dark) rim of sky around it. The guided filter moves t's edges onto the image's (He
            # et al.'s transmission refinement), so the rim hazes like the sky it is
            small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA) if (sh, sw) != (h, w) else image
            g = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
            t = guided_filter(g, t, max(1, round(min(sh, sw) / 64)), 1e-3)
        if (sh, sw) != (h, w):
            t = cv2.resize(t, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(t, params["t_min"], 1.0)

    def apply(self, image, params, aux=None):
        require_rgb8(image)
        j = image_to_linear(image)
        t = self.transmission(image, params, aux)[..., None]
        a = srgb_to_linear(np.asarray(params["airlight"], dtype=np.float32))
        glow = source_glow(j, params.get("glow", 0.0))
        out = j * t
        out += (a if glow is None else glow + a) * (1.0 - t)  # airlight and glow both scale with 1 - t
        return linear_to_uint8(out)

    def statistic(self, hq, lq, params, aux=None):
        g0, g1 = gray(hq), gray(lq)
        d = self.depth(hq, params, aux)
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
