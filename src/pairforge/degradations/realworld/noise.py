"""Noise: sensor (Poisson-Gaussian), film-like grain, impulses, additive Gaussian, region-wise.

Physical model. A pixel counts photo-electrons: a Poisson process whose variance equals its mean, so
in linear light the noise variance is ``x / photons + read^2`` (Poisson-Gaussian; ``photons`` is the
full-well scale at the exposure used, ``read`` the read-out noise); demosaicing and in-camera denoising
then correlate it spatially (modelled by a small Gaussian on the noise field). Granular noise follows
the reference recipe: one luma grain field N(0, 8 s) shared by R, G, B plus weaker per-channel chroma
noise N(0, 0.35 * 8 s) on the 0-255 scale, optionally with a grain size. Salt-and-pepper models dead /
hot pixels and transmission errors; real photos rarely show them, so they are rare (weight 0.05) and sparse.
Plain additive Gaussian stands for the noise of the whole chain.
Between one and a few components are drawn and applied in random order (the reference drew 2-4).
Region-wise (segment-aware): real ISPs denoise regions differently (faces, sky), so with some
probability each segment gets its own noise gain, a spatially varying noise level.
"""
from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from pairforge.configbase import FloatRange, IntRange
from pairforge.degradations.realworld.common import (
    RealWorldType,
    TypeConfig,
    correlate_noise,
    gaussian,
    image_to_linear,
    integer,
    linear_to_srgb,
    log_uniform,
    new_seed,
    normal,
    require_rgb8,
    srgb_to_linear,
    to_float,
    to_uint8,
    uniform,
)
from pairforge.degradations.realworld.segments import scene_segments
from pairforge.degradations.realworld.strength import (
    gray,
    laplacian_energy,
    linear_noise_fit,
)
from pairforge.registry import REALWORLD_TYPES

Component = Literal["poisson_gaussian", "grain", "salt_pepper", "gaussian"]


@REALWORLD_TYPES.register("noise", type="pairforge.degradations.realworld.noise:Noise", rank=80)
class NoiseConfig(TypeConfig):
    components: dict[Component, float] = Field(
        default_factory=lambda: {"poisson_gaussian": 1.0, "grain": 1.0, "salt_pepper": 0.05, "gaussian": 1.0},
        description="relative weights of the noise components",
    )
    count: IntRange = Field((1, 2), description="how many distinct components per sample (the reference "
                            "drew 2-4 of a wider set; sensor noise already combines shot and read noise)")
    photons: FloatRange | None = Field(None, description="Poisson: photo-electrons at full scale (log-uniform)")
    read: FloatRange | None = Field(None, description="Poisson-Gaussian: read noise sigma, linear units")
    grain: FloatRange | None = Field(None, description="grain strength s (luma sigma 8 s on 0-255)")
    sigma: FloatRange | None = Field(None, description="additive Gaussian sigma, 0-255 units")
    amount: FloatRange | None = Field(None, description="salt-and-pepper fraction of pixels")
    correlation: FloatRange = Field((0.0, 0.8), description="spatial correlation sigma of sensor noise, px")
    region_probability: float = Field(0.3, ge=0.0, le=1.0, description="per-segment noise gains")
    region_gain: FloatRange = Field((0.15, 1.6), description="range of the per-segment gains")

    LEVELS: ClassVar[dict] = {
        "light": {"photons": (600.0, 2000.0), "read": (0.001, 0.003), "grain": (0.3, 0.7),
                  "sigma": (2.0, 6.0), "amount": (0.0002, 0.001)},
        "medium": {"photons": (150.0, 600.0), "read": (0.003, 0.008), "grain": (0.7, 1.4),
                   "sigma": (6.0, 14.0), "amount": (0.001, 0.004)},
        "heavy": {"photons": (30.0, 150.0), "read": (0.008, 0.02), "grain": (1.4, 2.4),
                  "sigma": (14.0, 30.0), "amount": (0.004, 0.01)},
    }


def draw_components(rng: np.random.Generator, weights: dict[str, float], n: int) -> list[str]:
    names = [k for k, v in weights.items() if v > 0]
    p = np.array([weights[k] for k in names], dtype=np.float64)
    n = max(1, min(n, len(names)))
    idx = rng.choice(len(names), size=n, replace=False, p=p / p.sum())
    return [names[int(i)] for i in idx]


def add_component(x: np.ndarray, comp: dict, rng: np.random.Generator, image: np.ndarray | None = None) -> np.ndarray:
    """Apply one component to a float sRGB image in [0, 1] (``image``: the uint8 image ``x`` was made
    from, when it still is, so its linear values are one 256-entry table lookup)."""
    kind = comp["kind"]
    if kind == "poisson_gaussian":
        lin = image_to_linear(image) if image is not None else srgb_to_linear(x)
        photons = comp["photons"]
        lam = lin * np.float32(photons)  # lin >= 0 (a table of [0, 1])
        read = np.float32(comp["read"])
        z = normal(rng, lin.shape)
        # shot + read noise as one Gaussian of the summed variance (exact in distribution above a few
        # photo-electrons, one draw instead of two); the darkest pixels (< 4 e-) get true Poisson counts
        var = lin * np.float32(1.0 / photons)
        var += read * read
        n = z * np.sqrt(var, out=var)
        dark = np.flatnonzero(lam < 4.0)  # flat indices: take/put cost a fifth of boolean masks here
        if dark.size:
            ld = np.take(lam, dark)
            v = (rng.poisson(ld) - ld) / np.float32(photons)
            v += np.take(z, dark) * read
            np.put(n, dark, v)
        n = correlate_noise(n, comp["correlation"])
        n += lin
        return linear_to_srgb(n)  # clips to [0, 1]
    if kind == "grain":
        s = np.float32(comp["strength"] * 8.0 / 255.0)
        h, w = x.shape[:2]
        luma = normal(rng, (h, w, 1))
        luma *= s
        chroma = normal(rng, (h, w, 3))
        chroma *= np.float32(0.35) * s
        chroma += luma
        return x + correlate_noise(chroma, comp["size"])
    if kind == "gaussian":
        return x + normal(rng, x.shape) * np.float32(comp["sigma"] / 255.0)
    if kind == "salt_pepper":
        u = rng.random(x.shape[:2])
        out = x.copy()
        out[u < comp["amount"] * comp["salt"]] = 1.0
        out[(u >= comp["amount"] * comp["salt"]) & (u < comp["amount"])] = 0.0
        return out
    raise ValueError(f"unknown noise component {kind!r}")


class Noise(RealWorldType):
    name = "noise"
    config_cls = NoiseConfig

    def _sample(self, rng, level):
        c = self.config
        kinds = draw_components(rng, c.components, integer(rng, c.count))
        comps = []
        for k in kinds:
            if k == "poisson_gaussian":
                comps.append({"kind": k, "photons": log_uniform(rng, c.range("photons", level)),
                              "read": uniform(rng, c.range("read", level)),
                              "correlation": uniform(rng, c.correlation)})
            elif k == "grain":
                comps.append({"kind": k, "strength": uniform(rng, c.range("grain", level)),
                              "size": uniform(rng, (0.0, 1.0))})
            elif k == "gaussian":
                comps.append({"kind": k, "sigma": uniform(rng, c.range("sigma", level))})
            else:
                comps.append({"kind": k, "amount": uniform(rng, c.range("amount", level)),
                              "salt": uniform(rng, (0.3, 0.7))})
        region = bool(rng.random() < c.region_probability)
        p = {"components": comps, "region_wise": region, "seed": new_seed(rng)}
        if region:
            p["region_gain"] = list(c.region_gain)
        return p

    def needs(self, params):
        return {"segments"} if params.get("region_wise") else set()

    def apply(self, image, params, aux=None):
        require_rgb8(image)
        rng = np.random.Generator(np.random.PCG64(params["seed"]))
        x0 = to_float(image)
        x = x0
        for k, comp in enumerate(params["components"]):
            x = np.clip(add_component(x, comp, rng, image if k == 0 else None), 0.0, 1.0)
        if params.get("region_wise"):
            labels = scene_segments(image, aux)
            n = int(labels.max()) + 1
            lo, hi = params["region_gain"]
            gains = np.random.Generator(np.random.PCG64(params["seed"] + 1)).uniform(lo, hi, size=n)
            gmap = gaussian(gains[labels].astype(np.float32), 1.0)[..., None]
            x = np.clip(x0 + (x - x0) * gmap, 0.0, 1.0)
        return to_uint8(x)

    def statistic(self, hq, lq, params, aux=None):
        res = to_float(lq) - to_float(hq)
        fit = linear_noise_fit(hq, lq)
        return {
            "hf_ratio": laplacian_energy(gray(lq)) / max(laplacian_energy(gray(hq)), 1e-12),
            "residual_std": float(res.std() * 255.0),
            "linear_var_slope": fit["a"],
            "linear_var_offset": fit["b"],
        }
