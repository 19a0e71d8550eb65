"""Lens flare: glow, starburst, ghosts and veiling glare from a bright source, or user flare patterns.

Physical model. A bright light source in (or just outside) the frame sends stray light through the
lens: scattering in the glass and on dust spreads it into a *glow* (radial falloff) and a *halo*
ring; diffraction at the straight aperture blades makes *starburst* spikes (N blades give N spikes when
N is even, 2N when odd) plus fine random *rays* from scratches and lashes; inter-reflections between
lens surfaces form *ghosts*, coloured (anti-reflection coatings) scaled images of the aperture polygon
placed on the line through the source and the optical centre; all of it lifts the black level as
*veiling glare*. Stray light adds to the image irradiance, so the flare is added in linear light and the
sum clips at the sensor's full well (the saturated core).

Where the source is. Flare needs a light source: the brightest compact near-saturated region of the
photo when it has one (a lamp, the sun, a specular highlight; ``anchor: bright_source``), else a source
just outside the frame (the sun above or beside the view; ``anchor: outside_frame``), never an arbitrary
point on a coat or a face. Colours: the source's own colour when it is in the image, else a black-body
colour between 2700 K (tungsten) and 6500 K (daylight); ghosts take the faint green, amber or violet
tints of anti-reflection coatings.

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
    fit_to,
    gaussian,
    image_to_linear,
    integer,
    linear_to_uint8,
    new_seed,
    require_rgb8,
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
    inside_probability: float = Field(0.85, ge=0.0, le=1.0, description="anchor to a bright source of the "
                                      "photo when it has one (else a source just outside the frame)")
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


#: sRGB-relative colours of black-body radiators (Kelvin -> linear RGB, max channel 1)
BLACKBODY = {2700: (1.0, 0.62, 0.31), 3200: (1.0, 0.71, 0.45), 4000: (1.0, 0.81, 0.64),
             5000: (1.0, 0.90, 0.82), 5800: (1.0, 0.96, 0.93), 6500: (0.96, 0.97, 1.0)}
#: residual reflections of anti-reflection coatings (ghost tints): faint green, amber, violet
COATINGS = ((0.75, 1.0, 0.7), (1.0, 0.85, 0.6), (0.82, 0.75, 1.0), (0.9, 1.0, 0.9))


def tint(rng: np.random.Generator) -> list[float]:
    """A light source's colour on the black-body locus (2700 K .. 6500 K), interpolated."""
    ks = sorted(BLACKBODY)
    k = rng.uniform(ks[0], ks[-1])
    c = np.array([np.interp(k, ks, [BLACKBODY[t][i] for t in ks]) for i in range(3)])
    return [rnd(v, 4) for v in c / c.max()]


def coating_tint(rng: np.random.Generator) -> list[float]:
    c = np.asarray(COATINGS[int(rng.integers(0, len(COATINGS)))])
    return [rnd(v, 4) for v in c]


def find_source(image: np.ndarray) -> dict | None:
    """The brightest compact near-saturated region (centre as a fraction of the frame, its colour), or
    None. Compact: under 4% of the frame; a blown-out sky or a white wall is no point source."""
    h, w = image.shape[:2]
    f = min(1.0, 96.0 / min(h, w))
    small = cv2.resize(image, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA) \
        if f < 1 else image
    lin = image_to_linear(small)
    lum = lin @ np.asarray([0.2126, 0.7152, 0.0722], np.float32)
    bright = (lum >= 0.9).astype(np.uint8)  # near-saturated (sRGB >= ~0.95): a light, not a white shirt
    if not bright.any():
        return None
    n, cc, stats, cent = cv2.connectedComponentsWithStats(bright, connectivity=8)
    best, score = None, 0.0
    for i in range(1, n):
        area = stats[i, cv2.CC_STAT_AREA]
        if area > 0.04 * bright.size:
            continue
        m = cc == i
        e = float(lum[m].sum())
        if e > score:
            best, score = i, e
    if best is None:
        return None
    m = cc == best
    col = lin[m].mean(0)
    col = 0.5 * col / max(float(col.max()), 1e-6) + 0.5  # a saturated source reads near white: keep its hue, soften it
    sh, sw = small.shape[:2]
    return {"position": [float((cent[best][0] + 0.5) / sw), float((cent[best][1] + 0.5) / sh)],
            "tint": [float(v) for v in col / col.max()]}


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
        # a source just outside the frame, used when the photo has no bright source of its own
        side = int(rng.integers(0, 3))
        off = uniform(rng, (0.03, 0.12))
        pos = [[-off, uniform(rng, (0, 0.5))], [1 + off, uniform(rng, (0, 0.5))], [uniform(rng, (0.1, 0.9)), -off]][side]
        blades = integer(rng, (5, 9))
        ghosts = []
        for _ in range(integer(rng, c.ghosts)):
            t = uniform(rng, (-1.3, 0.7))
            ghosts.append({
                "t": t,
                "radius": uniform(rng, (0.015, 0.09)),
                "intensity": uniform(rng, (0.04, 0.15)),
                "tint": coating_tint(rng),
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
            "use_source": bool(rng.random() < c.inside_probability),
        }

    def bind(self, image, params, aux):
        """Anchor the flare to the photo's brightest compact source, or keep the outside-frame one."""
        if params.get("source") != "procedural":
            return {}
        src = find_source(image) if params.get("use_source", True) else None
        if src is None:
            return {"anchor": "outside_frame"}
        return {"anchor": "bright_source", "position": [rnd(v, 5) for v in src["position"]],
                "tint": [rnd(v, 4) for v in src["tint"]]}

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
        require_rgb8(image)
        h, w = image.shape[:2]
        if params["source"] == "pattern":
            g = params["gamma"]
            lin = np.power(to_float(image), g)
            out = np.clip(lin + self._pattern((h, w), params), 0.0, 1.0)
            return to_uint8(np.power(out, 1.0 / g))
        lin = image_to_linear(image)
        # the flare is smooth at the scale of a pixel: render it at <= 320 px and upsample
        f = min(1.0, 320.0 / min(h, w))
        if f < 1:
            small = self.render((max(8, round(h * f)), max(8, round(w * f))), params)
            flare = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            flare = self.render((h, w), params)
        return linear_to_uint8(np.clip(lin + flare, 0.0, 1.0))

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
