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
        "light": {"strength": (0.4, 0.7), "glow": (0.03, 0.06), "streak_length": (0.1, 0.25), "veil": (0.0, 0.025)},
        "medium": {"strength": (0.7, 1.15), "glow": (0.05, 0.1), "streak_length": (0.2, 0.45), "veil": (0.02, 0.06)},
        "heavy": {"strength": (1.15, 1.8), "glow": (0.08, 0.16), "streak_length": (0.35, 0.8), "veil": (0.05, 0.12)},
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
    """The photo's light source, if it shows one: the brightest compact near-saturated region that
    *lights its surroundings* (centre as a fraction of the frame, its colour), or None.

    Near-saturation alone does not make a light: a white cup rim, a glint on a helmet or on a spoon
    clips too. What a lamp, the sun or a street light has and a specular glint has not is a glow: the
    light scattered by the air and the lens around it, brighter than the lit scene in *every*
    direction and falling off outwards. So a candidate (near-saturated, compact: under 4% of the
    frame, not a line) is a source when, in each of 8 sectors around it, the ring just outside it is
    at least twice as bright as the frame's median and no darker than the ring beyond it. A glint sits
    on its object's own colour (a dark helmet, a red cup), which fails that in some direction. In a
    bright (not low-key) frame, where white surfaces clip as well, only a sun counts: a clipped blob
    of some size whose glow is bright (>= 0.6 linear) all around. The colour is the glow's (the core
    is clipped to white) less the background's: a sodium lamp's flare is orange."""
    h, w = image.shape[:2]
    f = min(1.0, 96.0 / min(h, w))
    small = cv2.resize(image, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA) \
        if f < 1 else image
    lin = image_to_linear(small)
    lum = lin @ np.asarray([0.2126, 0.7152, 0.0722], np.float32)
    bright = (lum >= 0.9).astype(np.uint8)  # near-saturated (sRGB >= ~0.95)
    if not bright.any():
        return None
    sh, sw = lum.shape
    median = max(float(np.median(lum)), 0.01)
    # a low-key frame (night, a dim room): most of it far below clipping, so what clips is a light. In
    # a bright frame white surfaces clip too: only a sun, a big clipped blob in a bright glow, counts
    low_key = float(np.quantile(lum, 0.9)) < 0.35
    glow_floor = 0.0 if low_key else 0.6
    _n, cc, stats, cent = cv2.connectedComponentsWithStats(bright, connectivity=8)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    best, score, best_col = None, 0.0, None
    # the largest blobs first, at most 16 (a sparkling sea or a chandelier must not cost hundreds of
    # ring tests; the source chosen is the biggest that passes anyway)
    order = 1 + np.argsort(-stats[1:, cv2.CC_STAT_AREA], kind="stable")[:16]
    for i in (int(v) for v in order):
        area = int(stats[i, cv2.CC_STAT_AREA])
        bw, bh = int(stats[i, cv2.CC_STAT_WIDTH]), int(stats[i, cv2.CC_STAT_HEIGHT])
        if area > 0.04 * bright.size or max(bw, bh) > 3 * min(bw, bh) + 2:
            continue
        cx, cy = cent[i]
        rad = max(np.sqrt(area / np.pi), 0.5)
        wd = max(2.0, rad)
        r = np.hypot(xx - cx, yy - cy)
        sector = ((np.arctan2(yy - cy, xx - cx) + np.pi) / (2 * np.pi) * 8).astype(np.int32) % 8
        own = cc == i
        inner = (r >= rad + 1) & (r < rad + 1 + wd) & ~own
        outer = (r >= rad + 1 + 2 * wd) & (r < rad + 1 + 3 * wd)
        ins = np.bincount(sector[inner], weights=lum[inner], minlength=8) / np.maximum(np.bincount(sector[inner], minlength=8), 1)
        outs = np.bincount(sector[outer], weights=lum[outer], minlength=8) / np.maximum(np.bincount(sector[outer], minlength=8), 1)
        valid = (np.bincount(sector[inner], minlength=8) > 0) & (np.bincount(sector[outer], minlength=8) > 0)
        if valid.sum() < 5:  # cut by the frame on most sides: no way to tell
            continue
        if not np.all(ins[valid] >= max(2.0 * median, glow_floor)) or not np.all(ins[valid] >= 0.97 * outs[valid]):
            continue
        if not low_key and area < 0.002 * bright.size:  # in daylight, a sun is more than a few pixels
            continue
        e = float(lum[own].sum()) * valid.sum() / 8  # a source the frame cuts is a worse guess
        if e > score:
            # the glow's own light: the ring's colour less the scene's beyond it (a sun's glow over a
            # blue sky is the sun's colour, not the sky's)
            glow = inner & (lum < 0.9)
            col = lin[glow].mean(0) - lin[outer].mean(0) if glow.any() and outer.any() else np.zeros(3)
            if float(col.max()) < 0.02:
                col = np.ones(3)  # no measurable glow colour: white
            best, score, best_col = i, e, np.maximum(col, 0.0)
    if best is None:
        return None
    col = np.maximum(best_col, 1e-6) / max(float(best_col.max()), 1e-6)
    col = 0.35 + 0.65 * col  # the flare is the source's colour, not fully saturated (the core is white)
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
        """Anchor the flare to the photo's light source, or keep the outside-frame one. A monochrome
        photo (film, a grey sensor) records stray light without colour: its flare is neutral."""
        if params.get("source") != "procedural":
            return {}
        out: dict = {}
        mono = bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))
        if mono:
            out["tint"] = [1.0, 1.0, 1.0]
            out["ghosts"] = [{**g, "tint": [1.0, 1.0, 1.0]} for g in params.get("ghosts", [])]
        src = find_source(image) if params.get("use_source", True) else None
        if src is None:
            return {**out, "anchor": "outside_frame"}
        return {"anchor": "bright_source", "position": [rnd(v, 5) for v in src["position"]],
                "tint": out.get("tint") or [rnd(v, 4) for v in src["tint"]], **{k: v for k, v in out.items() if k != "tint"}}

    # ----------------------------------------------------------------------------------------------

    def render(self, shape: tuple[int, int], p: dict) -> np.ndarray:
        """The procedural flare irradiance (linear RGB, unclipped) for an image of ``shape``."""
        h, w = shape
        s = float(min(h, w))
        sx, sy = p["position"][0] * (w - 1), p["position"][1] * (h - 1)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        dx, dy = xx - sx, yy - sy
        r = np.hypot(dx, dy)
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
            # Python floats keep the maps float32 (a NumPy float64 scalar would promote every line)
            a = float(np.deg2rad(p["blade_rotation"])) + j * np.pi / lines
            d = dx * np.float32(np.sin(a)) - dy * np.float32(np.cos(a))
            spikes += np.exp(np.float32(-0.5 / width**2) * (d * d))
        spikes *= p["streak_intensity"] * fall
        # fine rays: an angular profile (wedges), shorter
        rays = np.zeros_like(r)
        if p["rays"]:
            rr = np.random.Generator(np.random.PCG64(p["ray_seed"]))
            draws = np.array([[rr.uniform(-np.pi, np.pi), rr.uniform(0.002, 0.01), rr.uniform(0.05, 0.3)]
                              for _ in range(p["rays"])])
            grid = np.linspace(-np.pi, np.pi, 3600, endpoint=False)
            dd = np.mod(grid[None, :] - draws[:, :1] + np.pi, 2 * np.pi) - np.pi  # wrapped angle
            prof = (draws[:, 2:] * np.exp(-0.5 * (dd / draws[:, 1:2]) ** 2)).sum(0).astype(np.float32)
            phi = np.arctan2(dy, dx)
            idx = ((phi + np.float32(np.pi)) * np.float32(3600 / (2 * np.pi))).astype(np.int32) % 3600
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
