"""The capture/upload tail: what happens to a photo on its way through the web after the main degradation.

Applied to 80% of real-world samples by default (a photo rarely reaches a dataset untouched): downscale
by U(0.6, 1.0) (thumbnails, platform limits), a light blur (resampling filters, sharpening
undone), a little noise (re-capture, dithering), JPEG, and a resize back to the original size so the
pair stays aligned (the reference's "web-style degradation emulation").
"""
from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from pairforge.configbase import FloatRange, StrictModel
from pairforge.degradations.realworld.common import (
    gaussian,
    new_seed,
    normal,
    tidy,
    to_float,
    to_uint8,
    uniform,
    weighted_choice,
)
from pairforge.degradations.realworld.compression import INTERP, encode_decode


class WebTailConfig(StrictModel):
    probability: float = Field(0.8, ge=0.0, le=1.0, description="share of samples that get the tail")
    downscale: FloatRange = (0.6, 1.0)
    blur_sigma: FloatRange = Field((0.0, 0.6), description="px, at the downscaled size")
    noise_sigma: FloatRange = Field((0.5, 3.0), description="0-255 units")
    jpeg_quality: FloatRange = (60.0, 95.0)


def sample_tail(config: WebTailConfig, rng: np.random.Generator) -> dict:
    return tidy({
        "op": "web_tail",
        "downscale": uniform(rng, config.downscale),
        "down_interp": weighted_choice(rng, {"area": 1.0, "linear": 1.0, "cubic": 1.0}),
        "blur_sigma": uniform(rng, config.blur_sigma),
        "noise_sigma": uniform(rng, config.noise_sigma),
        "jpeg_quality": round(uniform(rng, config.jpeg_quality)),
        "up_interp": weighted_choice(rng, {"linear": 1.0, "cubic": 1.0}),
        "seed": new_seed(rng),
    })


def apply_tail(image: np.ndarray, p: dict) -> np.ndarray:
    h, w = image.shape[:2]
    size = (max(8, round(w * p["downscale"])), max(8, round(h * p["downscale"])))
    x = cv2.resize(image, size, interpolation=INTERP[p["down_interp"]])
    x = gaussian(to_float(x), p["blur_sigma"])
    rng = np.random.Generator(np.random.PCG64(p["seed"]))
    z = normal(rng, x.shape)
    z *= np.float32(p["noise_sigma"] / 255.0)
    x += z  # x is gaussian()'s own array
    x = to_uint8(x)
    x = encode_decode(x, "jpeg", p["jpeg_quality"], "420")
    return cv2.resize(x, (w, h), interpolation=INTERP[p["up_interp"]])
