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
    RealWorldType,
    TypeConfig,
    gaussian,
    image_to_linear,
    integer,
    linear_to_srgb,
    new_seed,
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


def box_series(t: np.ndarray, duty: float, start: float, atten: list[float]) -> np.ndarray:
    """A periodic box (period 1, width ``duty`` from ``start``) as a Fourier series whose k-th harmonic
    is multiplied by ``atten[k-1]`` (the camera MTF at that frequency). ``t`` is reduced modulo 1
    first so float32 keeps its precision."""
    t = np.mod(t - (start + duty / 2), 1.0).astype(np.float32)
    out = np.full(t.shape, duty, dtype=np.float32)
    for k, a in enumerate(atten, start=1):
        coef = 2.0 * np.sin(np.pi * k * duty) / (np.pi * k) * a
        if abs(coef) > 1e-4:
            out += np.float32(coef) * np.cos(np.float32(2 * np.pi * k) * t)
    return out


def box_series3(t: np.ndarray, duty: float, atten: list[float]) -> np.ndarray:
    """The R, G, B sub-pixel stripes at once (boxes starting at 0, 1/3, 2/3 of the period): one cosine
    and one sine per harmonic, the channel shifts by the angle-sum identity."""
    t = np.mod(t - duty / 2, 1.0).astype(np.float32)
    out = np.full(t.shape + (3,), duty, dtype=np.float32)
    for k, a in enumerate(atten, start=1):
        coef = 2.0 * np.sin(np.pi * k * duty) / (np.pi * k) * a
        if abs(coef) <= 1e-4:
            continue
        ck, sk = np.cos(np.float32(2 * np.pi * k) * t), np.sin(np.float32(2 * np.pi * k) * t)
        for ch in range(3):
            b = 2 * np.pi * k * ch / 3.0  # cos(x - b) = cos x cos b + sin x sin b
            out[..., ch] += np.float32(coef * np.cos(b)) * ck + np.float32(coef * np.sin(b)) * sk
    return out


def camera_mtf(freq: float, blur_sigma: float, aperture: float) -> float:
    """Lens (Gaussian) times pixel aperture (box of width ``aperture`` px) at ``freq`` cycles/px."""
    return float(np.exp(-2 * (np.pi * blur_sigma * freq) ** 2) * np.sinc(aperture * freq))


def screen_capture(image: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
    """The screen-photograph simulation on a uint8 image (see module docstring)."""
    h, w = image.shape[:2]
    s = float(min(h, w))
    lin = image_to_linear(image)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    X, Y = (xx - (w - 1) / 2) / s, (yy - (h - 1) / 2) / s
    den = 1.0 + p["perspective"][0] * X + p["perspective"][1] * Y
    th = np.deg2rad(p["rotation"])
    m = p["pitch"]
    u = m * s * (np.cos(th) * X - np.sin(th) * Y) / den + p["phase"][0]
    v = m * s * (np.sin(th) * X + np.cos(th) * Y) / den + p["phase"][1]
    atten = [camera_mtf(k * m, p["blur_sigma"], p["aperture"]) for k in (1, 2, 3)]
    du, dv = p["fill"] / 3.0, p["matrix_fill"]
    rows = box_series(v, dv, 0.0, atten)
    c = p["contrast"]
    stripes = box_series3(u, du, atten)
    lattice = np.float32(1.0 - c) + stripes * (np.float32(c / (du * dv)) * rows)[..., None]
    layout = CFA[p["cfa"]]
    chan = np.empty((h, w), dtype=np.intp)
    chan[0::2, 0::2], chan[0::2, 1::2] = layout[0]
    chan[1::2, 0::2], chan[1::2, 1::2] = layout[1]
    sensed = np.take_along_axis(lin * lattice, chan[..., None], axis=2)[..., 0]
    sensed = sensed + rng.standard_normal(size=sensed.shape, dtype=np.float32) * np.float32(p["noise"])
    mosaic = np.clip(np.rint(np.clip(sensed, 0, 1) * 65535), 0, 65535).astype(np.uint16)
    code = layout[2] if p["demosaic"] == "bilinear" else layout[3]
    rgb = cv2.cvtColor(mosaic, code).astype(np.float32) / 65535.0
    return linear_to_srgb(rgb)


# --------------------------------------------------------------------------------------------------
# interference


def interference_pattern(h: int, w: int, p: dict) -> np.ndarray:
    """Per-channel pattern in [0, 1] (mean ~0.5): product of two nearly equal warped gratings, low-passed.

    The phases are reduced modulo one cycle in float64 before the cosines run in float32; the three
    channels' phase shifts come from one cosine and one sine (cos(a + b) = cos a cos b - sin a sin b)."""
    s = float(min(h, w))
    y = (np.arange(h, dtype=np.float64) - (h - 1) / 2) / s
    x = (np.arange(w, dtype=np.float64) - (w - 1) / 2) / s
    X, Y = x[None, :], y[:, None]
    warp = (1 + p["curvature"] * (X * X + Y * Y)) * s
    a1, a2 = np.deg2rad(p["angle"]), np.deg2rad(p["angle"] + p["angle_delta"])
    f1, f2 = p["freq"], p["freq"] * (1 + p["freq_delta"])
    ph1 = np.mod(f1 * warp * (X * np.cos(a1) + Y * np.sin(a1)), 1.0).astype(np.float32) * np.float32(2 * np.pi)
    ph2 = np.mod(f2 * warp * (X * np.cos(a2) + Y * np.sin(a2)), 1.0).astype(np.float32) * np.float32(2 * np.pi)
    g2 = np.cos(ph2)
    c1, s1 = np.cos(ph1) * g2, np.sin(ph1) * g2
    shifts = 2 * np.pi * p["chroma_shift"] * np.arange(3)
    prod = np.stack([c1 * np.float32(np.cos(b)) - s1 * np.float32(np.sin(b)) for b in shifts], axis=-1)
    return np.clip(0.5 + gaussian(prod, p["blur_sigma"]), 0.0, 1.0).astype(np.float32)


def fuse(img: np.ndarray, pat: np.ndarray, amplitude: float, weight: float) -> np.ndarray:
    """Multiply (exposure-compensated) and grain-merge (A + B - 0.5 at opacity 0.8), mixed by ``weight``;
    the grain-merge term scales with the local brightness so dark areas stay dark."""
    mult = img * (1.0 - amplitude + amplitude * pat) / (1.0 - amplitude / 2.0)
    grain = img + 0.8 * amplitude * (pat - 0.5) * np.minimum(1.0, 2.0 * img)
    return np.clip(weight * mult + (1.0 - weight) * grain, 0.0, 1.0)


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
        x = to_float(image)
        for layer in params["layers"]:
            if layer["kind"] == "screen":
                rng = np.random.Generator(np.random.PCG64(layer["seed"]))
                x = screen_capture(to_uint8(x), layer, rng)
            else:
                pat = interference_pattern(h, w, layer)
                x = fuse(x, pat, layer["amplitude"], layer["weight"])
        return to_uint8(x)

    def statistic(self, hq, lq, params, aux=None):
        res = gray(lq) - gray(hq)
        return {"peak_fraction": spectral_peak_fraction(res), "residual_rms": float(np.sqrt(np.mean(res**2)))}
