"""Reflection: a photo taken through glass, with a second scene reflected in it.

Physical model. Glass transmits most of the scene behind it and reflects a fraction of the scene in
front of it; the camera records the sum of the two irradiances, so the composite is made in linear
light: ``I = tau T + rho R``. Transmission ``tau`` (0.85-0.95 for ordinary glass: a little light is
reflected and absorbed) and reflectance ``rho`` are separate: the scene behind the glass is only
slightly dimmed, it is not replaced in proportion to the reflection. Fresnel reflectance grows with the
angle of incidence, which varies smoothly across the pane, so ``rho`` is a smooth ramp in a random
direction around its mean. A reflection is only as visible as the light in front of the glass allows:
its mean is capped at ``cap`` times the transmitted scene's mean (a bright room reflected on the window
of a dark street reads as a reflection, it does not replace the street). The reflected scene is at a different distance from the transmitted
one: the camera focused on ``T`` sees ``R`` either *focused* (similar distance), *defocused* (Gaussian
blur) or *ghosted* (thick glass reflects from both surfaces: a second, shifted and attenuated copy).

The reflection layer ``R`` is a second image: ``aux["second_image"]`` when given, else the HQ of
another sample of the run through ``aux["load_image"](index)``; the partner index is drawn from the
params (``partner``: a uniform number; the next candidates when a partner cannot be loaded) and
recorded as ``partner_index``.
"""
from __future__ import annotations

from typing import ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field

from pairforge.configbase import FloatRange
from pairforge.degradations.realworld.common import (
    RealWorldType,
    TypeConfig,
    fit_to,
    gaussian,
    image_to_linear,
    linear_to_uint8,
    require_rgb8,
    uniform,
    weighted_choice,
)
from pairforge.degradations.realworld.strength import correlation, gray
from pairforge.registry import REALWORLD_TYPES

Mode = Literal["focused", "defocused", "ghosted"]


@REALWORLD_TYPES.register("reflection", type="pairforge.degradations.realworld.reflection:Reflection", rank=30)
class ReflectionConfig(TypeConfig):
    modes: dict[Mode, float] = Field(
        default_factory=lambda: {"focused": 1.0, "defocused": 2.0, "ghosted": 1.0},
        description="relative weights of the reflection renderings")
    alpha: FloatRange | None = Field(None, description="mean glass reflectance rho (linear)")
    transmission: FloatRange = Field((0.85, 0.95), description="glass transmission tau (linear)")
    cap: FloatRange | None = Field(None, description="the reflection's mean, at most this share of the "
                                   "transmitted scene's mean")
    alpha_variation: FloatRange = Field((0.0, 0.6), description="relative Fresnel ramp across the pane")
    sigma: FloatRange = Field((0.004, 0.02), description="defocus sigma, fraction of the short side")
    ghost_shift: FloatRange = Field((0.01, 0.05), description="ghost offset, fraction of the short side")
    ghost_attenuation: FloatRange = (0.5, 1.0)
    partner_window: int = Field(1000, ge=1, description="partners are drawn among this many other samples "
                                "when the run size is unknown")

    LEVELS: ClassVar[dict] = {
        "light": {"alpha": (0.06, 0.12), "cap": (0.15, 0.25)},
        "medium": {"alpha": (0.12, 0.2), "cap": (0.25, 0.4)},
        "heavy": {"alpha": (0.2, 0.32), "cap": (0.4, 0.6)},
    }


def partner_candidates(index: int, u: float, num_samples: int | None, window: int, n: int = 4) -> list[int]:
    """Other samples' indices drawn from a uniform ``u`` (first choice first, then fallbacks for
    partners whose image cannot be loaded): uniform over the other samples of the run when its size is
    known, else among the ``window`` preceding samples (they always exist), else the next ones."""
    out: list[int] = []
    for k in range(n):
        v = (u + k * 0.6180339887) % 1.0
        if num_samples is not None and num_samples > 1:
            idx = (index + 1 + int(v * (num_samples - 1))) % num_samples
        elif index > 0:
            lo = max(0, index - window)
            idx = lo + min(int(v * (index - lo)), index - lo - 1)
        else:
            idx = index + 1 + k
        if idx != index and idx not in out:
            out.append(int(idx))
    return out


class Reflection(RealWorldType):
    name = "reflection"
    config_cls = ReflectionConfig

    def _sample(self, rng, level):
        c = self.config
        mode = weighted_choice(rng, c.modes)
        p = {
            "mode": mode,
            "alpha": uniform(rng, c.range("alpha", level)),
            "transmission": uniform(rng, c.transmission),
            "cap": uniform(rng, c.range("cap", level)),
            "alpha_variation": uniform(rng, c.alpha_variation),
            "ramp_angle": uniform(rng, (0.0, 360.0)),
            "flip": bool(rng.random() < 0.5),
            "partner": float(rng.random()),
        }
        if mode == "defocused":
            p["sigma"] = uniform(rng, c.sigma)
        elif mode == "ghosted":
            p["sigma"] = uniform(rng, (0.0, c.sigma[0]))
            p["ghost_shift"] = uniform(rng, c.ghost_shift)
            p["ghost_angle"] = uniform(rng, (0.0, 360.0))
            p["ghost_attenuation"] = uniform(rng, c.ghost_attenuation)
        return p

    def needs(self, params):
        return {"second_image"}

    def bind(self, image, params, aux):
        aux = aux if aux is not None else {}
        if aux.get("second_image") is not None:
            return {"second_source": "aux"}
        loader = aux.get("load_image")
        if loader is None:
            return {}
        cache = aux.setdefault("_partner_cache", {})
        tried = []
        for idx in partner_candidates(int(aux.get("index", 0)), params["partner"], aux.get("num_samples"),
                                      self.config.partner_window):
            try:
                img = loader(idx)
            except Exception as e:  # noqa: BLE001 - a rejected or unreadable partner: try the next one
                tried.append(f"{idx}: {type(e).__name__}: {e}")
                continue
            if img is None:
                tried.append(f"{idx}: no image")
                continue
            cache[idx] = img
            return {"second_source": "run_sample", "partner_index": idx}
        raise ValueError(f"reflection: no partner image could be loaded ({'; '.join(tried)})")

    def second_image(self, image: np.ndarray, params: dict, aux: dict | None) -> np.ndarray:
        """The reflection scene fitted to the image size (and mirrored when ``flip``)."""
        aux = aux if aux is not None else {}
        img = aux.get("second_image")
        if img is None:
            if aux.get("load_image") is None:
                raise ValueError(
                    "reflection needs a second image: pass aux['second_image'] (an RGB uint8 array) or "
                    "aux['load_image'] (a callable index -> image; the pipeline passes the run's loader)")
            if "partner_index" not in params:
                params = {**params, **self.bind(image, params, aux)}
            idx = params["partner_index"]
            cache = aux.get("_partner_cache") or {}
            img = cache[idx] if idx in cache else aux["load_image"](idx)
        img = np.asarray(img)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        img = fit_to(img[..., :3].astype(np.uint8), image.shape[:2])
        return img[:, ::-1] if params["flip"] else img

    def layer(self, image: np.ndarray, params: dict, aux: dict | None) -> np.ndarray:
        """The reflection layer R in linear light, rendered per the mode."""
        h, w = image.shape[:2]
        s = float(min(h, w))
        r = image_to_linear(self.second_image(image, params, aux))
        r = gaussian(r, params.get("sigma", 0.0) * s)
        if params["mode"] == "ghosted":
            a = np.deg2rad(params["ghost_angle"])
            sh = params["ghost_shift"] * s
            m = np.float32([[1, 0, sh * np.cos(a)], [0, 1, sh * np.sin(a)]])
            ghost = cv2.warpAffine(r, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            att = params["ghost_attenuation"]
            r = (r + att * ghost) / (1.0 + att)
        return r

    def alpha_map(self, shape: tuple[int, int], params: dict) -> np.ndarray:
        """The reflectance rho: a linear ramp across the pane (h x w x 1), built from its row and column
        terms (a ramp is the sum of the two), scaled so its extreme corner reaches ``alpha_variation``."""
        h, w = shape
        a = np.deg2rad(params["ramp_angle"])
        px = (np.arange(w, dtype=np.float32) / np.float32(max(w - 1, 1)) - np.float32(0.5)) * np.float32(2.0 * np.cos(a))
        py = (np.arange(h, dtype=np.float32) / np.float32(max(h - 1, 1)) - np.float32(0.5)) * np.float32(2.0 * np.sin(a))
        reach = max(float(px.max() + py.max()), -float(px.min() + py.min()), 1e-6)  # max |px + py| (a corner)
        k = params["alpha"] * params["alpha_variation"] / reach
        rho = (px * np.float32(k))[None, :] + (py * np.float32(k) + np.float32(params["alpha"]))[:, None]
        return np.clip(rho, 0.0, 0.95, out=rho)[..., None]

    def apply(self, image, params, aux=None):
        require_rgb8(image)
        t = image_to_linear(image)
        refl = self.layer(image, params, aux)
        refl *= self.alpha_map(image.shape[:2], params)
        tau = float(params.get("transmission", 0.9))
        t *= np.float32(tau)
        if "cap" in params:  # the reflection stays a share of the transmitted scene
            m_r, m_t = float(refl.mean()), float(t.mean())
            limit = params["cap"] * max(m_t, 0.01)
            if m_r > limit:
                refl *= np.float32(limit / m_r)
        t += refl
        return linear_to_uint8(t)

    def statistic(self, hq, lq, params, aux=None):
        st = {"alpha_mean": float(self.alpha_map(hq.shape[:2], params).mean())}
        try:
            r = self.second_image(hq, params, aux)
        except ValueError:
            return st
        st["second_correlation"] = correlation(gray(lq) - gray(hq), gray(r))
        st["second_correlation_hq"] = correlation(gray(hq), gray(r))
        st["second_correlation_lq"] = correlation(gray(lq), gray(r))
        return st
