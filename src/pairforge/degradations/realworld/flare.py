"""Lens flare: glow, starburst, ghosts and veiling glare from a bright source, or user flare patterns.

Physical model. A bright light source in (or just outside) the frame sends stray light through the
lens: scattering in the glass and on dust spreads it into a *glow* (radial falloff) and a *halo*
ring; diffraction at the straight aperture blades makes *starburst* spikes (N blades give N spikes when
N is even, 2N when odd) plus fine random *rays* from scratches and lashes; inter-reflections between
lens surfaces form *ghosts*, coloured (anti-reflection coatings) scaled images of the aperture polygon
placed on the line through the source and the optical centre; all of it lifts the black level as
*veiling glare*. Stray light adds to the image irradiance, so the flare is added in linear light and the
sum clips at the sensor's full well (the saturated core).

Pattern mode follows the Flare7K recipe with user images from ``pattern_dir``: linearise the pattern
(gamma), transform it (rotation, scale, translation, shear, flip), brighten, blur, add a small DC offset,
add it to the linearised photo, clip, re-encode.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
from pydantic import Field

from pairforge.configbase import FloatRange, IntRange
from pairforge.degradations.realworld.common import (
    RealWorldType,
    TypeConfig,
    check_image,
    fit_to,
    gaussian,
    image_to_linear,
    integer,
    linear_to_srgb,
    new_seed,
    rnd,
    to_float,
    to_uint8,
    uniform,
)
from pairforge.degradations.realworld.strength import gray, radial_profile
from pairforge.registry import REALWORLD_TYPES

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


@REALWORLD_TYPES.register("flare", type="pairforge.degradations.realworld.flare:Flare", rank=40)
class FlareConfig(TypeConfig):
    strength: FloatRange | None = Field(None, description="overall flare brightness multiplier")
    glow: FloatRange | None = Field(None, description="glow radius, fraction of the short side")
    streak_length: FloatRange | None = Field(None, description="starburst length, fraction of the short side")
    veil: FloatRange | None = Field(None, description="veiling glare, linear units")
    ghosts: IntRange = Field((2, 7), description="number of ghosts")
    inside_probability: float = Field(0.85, ge=0.0, le=1.0, description="source inside the frame")
    pattern_dir: str | None = Field(None, description="directory of flare pattern images (Flare7K style)")
    pattern_probability: float = Field(0.5, ge=0.0, le=1.0, description="use a pattern when a dir is set")

    LEVELS: ClassVar[dict] = {
        "light": {"strength": (0.35, 0.6), "glow": (0.03, 0.06), "streak_length": (0.1, 0.25), "veil": (0.0, 0.02)},
        "medium": {"strength": (0.6, 1.0), "glow": (0.05, 0.1), "streak_length": (0.2, 0.45), "veil": (0.015, 0.05)},
        "heavy": {"strength": (1.0, 1.6), "glow": (0.08, 0.16), "streak_length": (0.35, 0.8), "veil": (0.04, 0.1)},
    }


def list_patterns(directory: str | Path) -> list[str]:
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"flare pattern_dir {str(d)!r} is not a directory")
    names = sorted(p.name for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not names:
        raise FileNotFoundError(f"flare pattern_dir {str(d)!r} holds no images ({sorted(IMAGE_SUFFIXES)})")
    return names


def tint(rng: np.random.Generator) -> list[float]:
    """A light-source colour from warm (tungsten, sodium) to cool (daylight, LED)."""
    c = np.array([1.0, rng.uniform(0.78, 1.0), rng.uniform(0.5, 1.1)])
    return [rnd(v, 4) for v in c / c.max()]


def polygon_distance(dx: np.ndarray, dy: np.ndarray, sides: int, rotation: float) -> np.ndarray:
    """Normalised 'radius' of a point in a regular polygon of circumradius 1 (<= 1 inside);
    ``sides`` 0 means a disk."""
    r = np.hypot(dx, dy)
    if sides < 3:
        return r
    phi = np.arctan2(dy, dx) - rotation
    seg = 2 * np.pi / sides
    local = np.mod(phi, seg) - seg / 2
    return r * np.cos(local) / np.cos(np.pi / sides)


class Flare(RealWorldType):
    name = "flare"
    config_cls = FlareConfig

    def _sample(self, rng, level):
        c = self.config
        strength = uniform(rng, c.range("strength", level))
        if c.pattern_dir and rng.random() < c.pattern_probability:
            names = list_patterns(c.pattern_dir)
            return {
                "source": "pattern",
                "pattern_file": names[int(rng.integers(0, len(names)))],
                "gamma": uniform(rng, (1.8, 2.2)),
                "rotation": uniform(rng, (-180.0, 180.0)),
                "scale": uniform(rng, (0.8, 1.5)),
                "translate": [uniform(rng, (-0.3, 0.3)), uniform(rng, (-0.3, 0.3))],
                "shear": uniform(rng, (-0.2, 0.2)),
                "flip": bool(rng.random() < 0.5),
                "gain": strength * uniform(rng, (1.0, 2.0)),
                "blur_sigma": uniform(rng, (0.0002, 0.005)),
                "dc_offset": uniform(rng, (-0.02, 0.02)),
            }
        if rng.random() < c.inside_probability:
            pos = [uniform(rng, (0.1, 0.9)), uniform(rng, (0.05, 0.6))]
        else:
            side = int(rng.integers(0, 3))
            pos = [[-0.08, uniform(rng, (0, 0.6))], [1.08, uniform(rng, (0, 0.6))], [uniform(rng, (0, 1)), -0.08]][side]
        blades = integer(rng, (5, 9))
        ghosts = []
        for _ in range(integer(rng, c.ghosts)):
            t = uniform(rng, (-1.3, 0.7))
            ghosts.append({
                "t": t,
                "radius": uniform(rng, (0.015, 0.09)),
                "intensity": uniform(rng, (0.04, 0.15)),
                "tint": tint(rng)[::-1] if rng.random() < 0.5 else tint(rng),
                "sides": blades if rng.random() < 0.6 else 0,
                "ring": bool(rng.random() < 0.3),
            })
        return {
            "source": "procedural",
            "position": [rnd(p, 5) for p in pos],
            "strength": strength,
            "tint": tint(rng),
            "core_radius": uniform(rng, (0.006, 0.015)),
            "glow_radius": uniform(rng, c.range("glow", level)),
            "halo": {"radius": uniform(rng, (0.08, 0.25)), "width": uniform(rng, (0.005, 0.02)),
                     "intensity": uniform(rng, (0.0, 0.06))},
            "blades": blades,
            "blade_rotation": uniform(rng, (0.0, 180.0)),
            "streak_length": uniform(rng, c.range("streak_length", level)),
            "streak_width": uniform(rng, (0.0015, 0.004)),
            "streak_intensity": uniform(rng, (0.3, 0.8)),
            "rays": integer(rng, (0, 40)),
            "ray_seed": new_seed(rng),
            "ghosts": ghosts,
            "veil": uniform(rng, c.range("veil", level)),
        }

    # ----------------------------------------------------------------------------------------------

    def render(self, shape: tuple[int, int], p: dict) -> np.ndarray:
        """The procedural flare irradiance (linear RGB, unclipped) for an image of ``shape``."""
        h, w = shape
        s = float(min(h, w))
        sx, sy = p["position"][0] * (w - 1), p["position"][1] * (h - 1)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        dx, dy = xx - sx, yy - sy
        r = np.hypot(dx, dy)
        phi = np.arctan2(dy, dx)
        k = p["strength"]
        core = 2.5 * np.exp(-((r / (p["core_radius"] * s)) ** 2))
        glow = 0.7 * np.exp(-r / (p["glow_radius"] * s)) + 0.2 * np.exp(-r / (3 * p["glow_radius"] * s))
        halo = p["halo"]
        ring = halo["intensity"] * np.exp(-(((r - halo["radius"] * s) / (halo["width"] * s)) ** 2))
        # diffraction spikes: lines through the source, constant width, exponential falloff
        n = p["blades"]
        lines = n if n % 2 else n // 2
        width = max(p["streak_width"] * s, 0.6)
        fall = np.exp(-r / (p["streak_length"] * s / 3))
        spikes = np.zeros_like(r)
        for j in range(lines):
            a = np.deg2rad(p["blade_rotation"]) + j * np.pi / lines
            d = np.abs(dx * np.sin(a) - dy * np.cos(a))
            spikes += np.exp(-0.5 * (d / width) ** 2)
        spikes *= p["streak_intensity"] * fall
        # fine rays: an angular profile (wedges), shorter
        rays = np.zeros_like(r)
        if p["rays"]:
            rr = np.random.Generator(np.random.PCG64(p["ray_seed"]))
            prof = np.zeros(3600, dtype=np.float32)
            grid = np.linspace(-np.pi, np.pi, 3600, endpoint=False)
            for _ in range(p["rays"]):
                c0, wd, amp = rr.uniform(-np.pi, np.pi), rr.uniform(0.002, 0.01), rr.uniform(0.05, 0.3)
                dd = np.angle(np.exp(1j * (grid - c0)))
                prof += amp * np.exp(-0.5 * (dd / wd) ** 2).astype(np.float32)
            idx = ((phi + np.pi) / (2 * np.pi) * 3600).astype(int) % 3600
            rays = prof[idx] * np.exp(-r / (p["streak_length"] * s / 5))
        light = (core + glow + ring + spikes + rays)[..., None] * np.asarray(p["tint"], np.float32)
        # ghosts on the line source -> optical centre
        cx, cy = (w - 1) / 2, (h - 1) / 2
        ghosts = np.zeros((h, w, 3), np.float32)
        for g in p["ghosts"]:
            gx, gy = cx + g["t"] * (sx - cx), cy + g["t"] * (sy - cy)
            rad = max(g["radius"] * s, 0.5)
            # only the ghost's bounding box is touched (ghosts are small)
            x0, x1 = max(0, int(gx - 1.3 * rad)), min(w, int(gx + 1.3 * rad) + 2)
            y0, y1 = max(0, int(gy - 1.3 * rad)), min(h, int(gy + 1.3 * rad) + 2)
            if x0 >= x1 or y0 >= y1:
                continue
            q = polygon_distance((xx[y0:y1, x0:x1] - gx) / rad, (yy[y0:y1, x0:x1] - gy) / rad, g["sides"],
                                 np.deg2rad(p["blade_rotation"]))
            fill = np.clip((1.0 - q) / 0.06 + 0.5, 0.0, 1.0)
            shape = 0.6 * fill + (0.9 * np.exp(-(((q - 0.97) / 0.05) ** 2)) if g["ring"] else 0.4 * fill * q**2)
            ghosts[y0:y1, x0:x1] += (g["intensity"] * shape)[..., None] * np.asarray(g["tint"], np.float32)
        veil = p["veil"] * (0.5 + 0.5 * np.exp(-r / s))[..., None] * np.asarray(p["tint"], np.float32)
        return (k * (light + ghosts) + veil).astype(np.float32)

    def _pattern(self, shape: tuple[int, int], p: dict) -> np.ndarray:
        if not self.config.pattern_dir:
            raise ValueError("flare params use a pattern but the config has no pattern_dir")
        path = Path(self.config.pattern_dir) / p["pattern_file"]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"flare pattern {str(path)!r} cannot be read")
        h, w = shape
        pat = fit_to(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (h, w)).astype(np.float32) / 255.0
        pat = np.power(pat, p["gamma"])
        if p["flip"]:
            pat = pat[:, ::-1]
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), p["rotation"], p["scale"])
        m[0, 1] += p["shear"] * p["scale"]
        m[:, 2] += [p["translate"][0] * w, p["translate"][1] * h]
        pat = cv2.warpAffine(np.ascontiguousarray(pat), m, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        pat = gaussian(pat, p["blur_sigma"] * min(h, w))
        return np.clip(pat * p["gain"] + p["dc_offset"], 0.0, None)

    def apply(self, image, params, aux=None):
        check_image(image)
        h, w = image.shape[:2]
        if params["source"] == "pattern":
            g = params["gamma"]
            lin = np.power(to_float(image), g)
            out = np.clip(lin + self._pattern((h, w), params), 0.0, 1.0)
            return to_uint8(np.power(out, 1.0 / g))
        lin = image_to_linear(image)
        return to_uint8(linear_to_srgb(np.clip(lin + self.render((h, w), params), 0.0, 1.0)))

    def statistic(self, hq, lq, params, aux=None):
        g0, g1 = gray(hq), gray(lq)
        st = {
            "saturated_gain": float((g1 >= 0.98).mean() - (g0 >= 0.98).mean()),
            "mean_gain": float((g1 - g0).mean()),
        }
        if params.get("source") == "procedural":
            h, w = hq.shape[:2]
            s = float(min(h, w))
            c = (params["position"][0] * (w - 1), params["position"][1] * (h - 1))
            # share of the headroom to white the flare fills, in rings around the source
            fill = (g1 - g0) / np.maximum(1.0 - g0, 0.02)
            st["radial_fill"] = radial_profile(fill, c, [0, 0.05 * s, 0.15 * s, 0.3 * s, 0.6 * s])
        return st
