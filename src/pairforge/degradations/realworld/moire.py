"""Moire: a photo of a screen (display lattice sampled by a Bayer sensor) and interference patterns.

Physical model (``screen``). A display shows each pixel as three narrow vertical R, G, B sub-pixel
stripes separated by a black matrix; a camera photographing it samples this periodic lattice with its
own pixel grid, each pixel behind one colour filter of a Bayer mosaic. Where the lattice frequency
(``pitch`` display pixels per camera pixel, near 1) beats against the sampling grid, the aliased
difference frequency appears as large coloured fringes; a slight rotation and perspective of the
camera bend them. We render the lattice analytically as a Fourier series of the sub-pixel boxes,
attenuated harmonic by harmonic by the camera's MTF (lens Gaussian blur times the pixel aperture's
sinc), point-sample it at the pixel centres, multiply by the displayed image (kept registered with the
HQ, as aligned screen-capture datasets are after homography registration), keep one colour per pixel
(Bayer), add sensor noise, quantise and demosaic with OpenCV.

Procedural model (``interference``). Two nearly equal gratings ``cos(2 pi f1 n1.x) cos(2 pi f2 n2.x)``
on slightly warped coordinates give a low beat frequency; the camera blur removes most of the carrier.
Per-channel phase offsets give the colour banding. Fusing follows the reference practice: a weighted
mix of a multiplicative blend and a grain-merge (A + B - 0.5 at opacity 0.8), except that the
grain-merge term is scaled by the local brightness: moire is a modulation of the light the screen
emits, so black stays black (an additive blend paints fringes onto dark areas). One to three layers are
fused; the first may be the screen simulation.

Pitch. The fringes people see in screen photos are broad: the display lattice is sampled near a
rational ratio, display pixels per camera pixel close to 1 or to 1/2, and the beat frequency
``|pitch - round(pitch)|`` (or ``|2 pitch - 1|``) is low. Pitches are drawn near those ratios
(``pitch_offset``); pitches far from them only make fine 2-3 px stripes.
"""
from __future__ import annotations

from typing import ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field

from pairforge.configbase import FloatRange, IntRange
from pairforge.degradations.realworld.common import (
    _TO_SRGB_16,
    RealWorldType,
    TypeConfig,
    _index16,
    gaussian,
    image_to_linear,
    integer,
    new_seed,
    normal,
    require_rgb8,
    to_float,
    to_uint8,
    uniform,
    weighted_choice,
)
from pairforge.degradations.realworld.strength import gray, spectral_peak_fraction
from pairforge.registry import REALWORLD_TYPES

CFA = {
    "RGGB": ((0, 1), (1, 2), cv2.COLOR_BayerRGGB2RGB, cv2.COLOR_BayerRGGB2RGB_EA),
    "BGGR": ((2, 1), (1, 0), cv2.COLOR_BayerBGGR2RGB, cv2.COLOR_BayerBGGR2RGB_EA),
    "GRBG": ((1, 0), (2, 1), cv2.COLOR_BayerGRBG2RGB, cv2.COLOR_BayerGRBG2RGB_EA),
    "GBRG": ((1, 2), (0, 1), cv2.COLOR_BayerGBRG2RGB, cv2.COLOR_BayerGBRG2RGB_EA),
}


@REALWORLD_TYPES.register("moire", type="pairforge.degradations.realworld.moire:Moire", rank=60)
class MoireConfig(TypeConfig):
    layers: IntRange = Field((1, 2), description="number of fused moire layers (the reference fused 1-3; a third adds cost, little look)")
    screen_probability: float = Field(0.6, ge=0.0, le=1.0, description="first layer is a screen capture")
    contrast: FloatRange | None = Field(None, description="screen: sub-pixel lattice contrast (0..1)")
    amplitude: FloatRange | None = Field(None, description="interference: pattern amplitude (0..1)")
    pitch_centres: dict[Literal["1", "0.5"], float] = Field(
        default_factory=lambda: {"1": 1.0, "0.5": 1.0},
        description="screen: ratios the lattice frequency is drawn near (display pixels per camera pixel)")
    pitch_offset: FloatRange = Field((0.015, 0.08), description="screen: |pitch - centre| (beat frequency)")
    rotation: FloatRange = Field((-8.0, 8.0), description="screen: camera roll, degrees")
    demosaic: dict[Literal["bilinear", "edge_aware"], float] = Field(
        default_factory=lambda: {"bilinear": 1.0, "edge_aware": 1.0})

    LEVELS: ClassVar[dict] = {
        "light": {"contrast": (0.15, 0.35), "amplitude": (0.05, 0.12)},
        "medium": {"contrast": (0.35, 0.6), "amplitude": (0.12, 0.25)},
        "heavy": {"contrast": (0.6, 0.9), "amplitude": (0.25, 0.5)},
    }


# --------------------------------------------------------------------------------------------------
# screen capture


def camera_mtf(freq: float, blur_sigma: float, aperture: float) -> float:
    """Lens (Gaussian) times pixel aperture (box of width ``aperture`` px) at ``freq`` cycles/px."""
    return float(np.exp(-2 * (np.pi * blur_sigma * freq) ** 2) * np.sinc(aperture * freq))


def _harmonics(t: np.ndarray, n: int) -> list[np.ndarray]:
    """cos(2 pi k t) for k = 1..n from one cosine (Chebyshev recurrence, float32)."""
    c1 = np.cos(t * np.float32(2 * np.pi))
    out = [c1]
    if n >= 2:
        out.append(np.float32(2) * c1 * c1 - np.float32(1))
    for _ in range(3, n + 1):
        out.append(np.float32(2) * c1 * out[-1] - out[-2])
    return out


def box_series(t: np.ndarray, duty: float, start: float, atten: list[float]) -> np.ndarray:
    """A periodic box (period 1, width ``duty`` from ``start``) as a Fourier series whose k-th harmonic
    is multiplied by ``atten[k-1]`` (the camera MTF at that frequency). ``t`` is reduced modulo 1
    first so float32 keeps its precision; the harmonics come from one cosine."""
    t = t - np.float32(start + duty / 2)
    t -= np.floor(t)
    out = np.full(t.shape, duty, dtype=np.float32)
    for k, ck in enumerate(_harmonics(t, len(atten)), start=1):
        coef = 2.0 * np.sin(np.pi * k * duty) / (np.pi * k) * atten[k - 1]
        if abs(coef) > 1e-4:
            out += np.float32(coef) * ck
    return out


def screen_capture(image: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
    """The screen-photograph simulation on a uint8 image (see module docstring); float sRGB in [0, 1].

    Each photosite sees one colour (Bayer), so the lattice is evaluated only where it is sampled: on
    each of the four CFA sub-grids, for that site's colour only (a quarter of the pixels and one of the
    three sub-pixel stripes each; the same values as evaluating all and keeping one). Coordinates are
    float32 (phase error < 1e-4 cycle at 4k px)."""
    h, w = image.shape[:2]
    s = float(min(h, w))
    th = np.deg2rad(p["rotation"])
    m = p["pitch"]
    atten = [camera_mtf(k * m, p["blur_sigma"], p["aperture"]) for k in (1, 2, 3)]
    du, dv = p["fill"] / 3.0, p["matrix_fill"]
    c = p["contrast"]
    gain = np.float32(c / (du * dv))
    layout = CFA[p["cfa"]]
    sensed = np.empty((h, w), dtype=np.float32)
    for r0 in (0, 1):
        for c0 in (0, 1):
            ch = layout[r0][c0]
            X = ((np.arange(c0, w, 2, dtype=np.float32) - np.float32((w - 1) / 2)) / np.float32(s))[None, :]
            Y = ((np.arange(r0, h, 2, dtype=np.float32) - np.float32((h - 1) / 2)) / np.float32(s))[:, None]
            scale = np.float32(m * s) / (np.float32(1.0) + np.float32(p["perspective"][0]) * X
                                         + np.float32(p["perspective"][1]) * Y)
            u = scale * (np.float32(np.cos(th)) * X - np.float32(np.sin(th)) * Y) + np.float32(p["phase"][0])
            v = scale * (np.float32(np.sin(th)) * X + np.float32(np.cos(th)) * Y) + np.float32(p["phase"][1])
            rows = box_series(v, dv, 0.0, atten)
            stripe = box_series(u, du, ch / 3.0, atten)  # sub-pixel ch: a box starting at ch / 3 of the period
            lattice = stripe * rows
            lattice *= gain
            lattice += np.float32(1.0 - c)
            sensed[r0::2, c0::2] = image_to_linear(image[r0::2, c0::2, ch]) * lattice
    sensed += normal(rng, sensed.shape) * np.float32(p["noise"])
    mosaic = _index16(sensed)  # clipped to [0, 1], 16-bit codes
    code = layout[2] if p["demosaic"] == "bilinear" else layout[3]
    rgb = cv2.cvtColor(mosaic, code)
    return np.take(_TO_SRGB_16, rgb)  # linear_to_srgb(rgb / 65535): the code is the table's index


# --------------------------------------------------------------------------------------------------
# interference


def interference_pattern(h: int, w: int, p: dict) -> np.ndarray:
    """Per-channel pattern in [0, 1] (mean ~0.5): product of two nearly equal warped gratings, low-passed.

    Float32 phases (< 2e-5 cycle of error at 512 px), reduced modulo one cycle before the cosines; the
    three channels' phase shifts come from one cosine and one sine (cos(a + b) = cos a cos b - sin a sin b)."""
    s = float(min(h, w))
    y = (np.arange(h, dtype=np.float64) - (h - 1) / 2) / s
    x = (np.arange(w, dtype=np.float64) - (w - 1) / 2) / s
    X, Y = x.astype(np.float32)[None, :], y.astype(np.float32)[:, None]
    warp = (X * X + Y * Y) * np.float32(p["curvature"] * s)
    warp += np.float32(s)
    a1, a2 = np.deg2rad(p["angle"]), np.deg2rad(p["angle"] + p["angle_delta"])
    f1, f2 = p["freq"], p["freq"] * (1 + p["freq_delta"])

    def phase(f: float, a: float) -> np.ndarray:
        ph = warp * (X * np.float32(f * np.cos(a)) + Y * np.float32(f * np.sin(a)))
        ph -= np.floor(ph)
        ph *= np.float32(2 * np.pi)
        return ph

    ph1 = phase(f1, a1)
    g2 = np.cos(phase(f2, a2))
    c1, s1 = np.cos(ph1) * g2, np.sin(ph1) * g2
    shifts = 2 * np.pi * p["chroma_shift"] * np.arange(3)
    prod = cv2.merge([c1 * np.float32(np.cos(b)) - s1 * np.float32(np.sin(b)) for b in shifts])
    pat = gaussian(prod, p["blur_sigma"])
    pat += np.float32(0.5)
    return np.clip(pat, 0.0, 1.0, out=pat)


def fuse(img: np.ndarray, pat: np.ndarray, amplitude: float, weight: float) -> np.ndarray:
    """Multiply (exposure-compensated) and grain-merge (A + B - 0.5 at opacity 0.8), mixed by ``weight``;
    the grain-merge term scales with the local brightness so dark areas stay dark.

    ``weight * img * (1 - A + A pat) / (1 - A / 2) + (1 - weight) * (img + 0.8 A (pat - 0.5) min(1, 2 img))``,
    gathered into ``img * (alpha + beta pat) + gamma (pat - 0.5) min(1, 2 img)`` (fewer passes)."""
    a, wt = float(amplitude), float(weight)
    k = 1.0 / (1.0 - a / 2.0)
    alpha = np.float32(wt * (1.0 - a) * k + (1.0 - wt))
    beta = np.float32(wt * a * k)
    gamma = np.float32((1.0 - wt) * 0.8 * a)
    img = np.asarray(img, dtype=np.float32)
    out = pat * beta
    out += alpha
    out *= img
    lit = np.minimum(img * np.float32(2.0), np.float32(1.0))
    lit *= pat - np.float32(0.5)
    lit *= gamma
    out += lit
    return np.clip(out, 0.0, 1.0, out=out)


class Moire(RealWorldType):
    name = "moire"
    config_cls = MoireConfig

    def _sample(self, rng, level):
        c = self.config
        n = integer(rng, c.layers)
        layers = []
        for i in range(n):
            if i == 0 and rng.random() < c.screen_probability:
                layers.append({
                    "kind": "screen",
                    "pitch": float(weighted_choice(rng, c.pitch_centres)) * (
                        1.0 + (1 if rng.random() < 0.5 else -1) * uniform(rng, c.pitch_offset)),
                    "rotation": uniform(rng, c.rotation),
                    "perspective": [uniform(rng, (-0.15, 0.15)), uniform(rng, (-0.15, 0.15))],
                    "phase": [uniform(rng, (0, 1)), uniform(rng, (0, 1))],
                    "contrast": uniform(rng, c.range("contrast", level)),
                    "fill": uniform(rng, (0.6, 0.95)),
                    "matrix_fill": uniform(rng, (0.7, 0.95)),
                    "blur_sigma": uniform(rng, (0.1, 0.3)),
                    "aperture": uniform(rng, (0.5, 0.9)),
                    "cfa": weighted_choice(rng, {k: 1.0 for k in CFA}),
                    "demosaic": weighted_choice(rng, c.demosaic),
                    "noise": uniform(rng, (0.001, 0.006)),
                    "seed": new_seed(rng),
                })
            else:
                sign = 1 if rng.random() < 0.5 else -1
                layers.append({
                    "kind": "interference",
                    "freq": uniform(rng, (0.15, 0.45)),
                    "freq_delta": sign * uniform(rng, (0.03, 0.15)),
                    "angle": uniform(rng, (0.0, 180.0)),
                    "angle_delta": uniform(rng, (-5.0, 5.0)),
                    "curvature": uniform(rng, (-0.6, 0.6)),
                    "chroma_shift": uniform(rng, (0.05, 0.33)),
                    "blur_sigma": uniform(rng, (0.8, 1.4)),
                    "amplitude": uniform(rng, c.range("amplitude", level)),
                    "weight": uniform(rng, (0.65, 0.75)),
                })
        return {"layers": layers}

    def apply(self, image, params, aux=None):
        require_rgb8(image)
        h, w = image.shape[:2]
        x = None  # float sRGB once a layer ran (the first layer reads the uint8 image itself)
        for layer in params["layers"]:
            if layer["kind"] == "screen":
                rng = np.random.Generator(np.random.PCG64(layer["seed"]))
                x = screen_capture(image if x is None else to_uint8(x), layer, rng)
            else:
                pat = interference_pattern(h, w, layer)
                x = fuse(to_float(image) if x is None else x, pat, layer["amplitude"], layer["weight"])
        return image.copy() if x is None else to_uint8(x)

    def statistic(self, hq, lq, params, aux=None):
        res = gray(lq) - gray(hq)
        return {"peak_fraction": spectral_peak_fraction(res), "residual_rms": float(np.sqrt(np.mean(res**2)))}
