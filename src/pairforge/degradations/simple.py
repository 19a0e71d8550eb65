"""A first-order blur -> downscale -> noise -> JPEG chain (Real-ESRGAN's first stage, simplified).

The full, faithful high-order engine lives in the chain modules; this small one stays as the cheapest
sensible degradation (and a baseline in benchmarks).
"""
from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from pairforge.configbase import FloatRange, StrictModel
from pairforge.degradations.base import Degrader, DegradeResult, Variants, build_degrader
from pairforge.degradations.resize import mod_crop
from pairforge.registry import DEGRADERS
from pairforge.seeding import rng_from_seed


@DEGRADERS.register(degrader="pairforge.degradations.simple:SimpleDegrader", thread_safe=True, max_pixels=178_956_970)
class SimpleDegradeConfig(StrictModel):
    kind: Literal["simple"] = "simple"
    scale: int = Field(4, ge=1, le=8, description="HQ/LQ size ratio")
    blur_sigma: FloatRange = (0.2, 3.0)
    noise_sigma: FloatRange = Field((1.0, 30.0), description="Gaussian noise sigma, 0-255 units")
    jpeg_quality: FloatRange = (30.0, 95.0)
    variants: Variants = 1
    resize_grid: Literal["registered", "upstream"] = Field(
        "registered",
        description="registered: the HQ is cropped to a multiple of the scale so the LQ (H/scale) covers exactly "
        "its field of view; upstream: the whole HQ is kept and the LQ is floor(H/scale) (sub-pixel drift)",
    )

    def build(self) -> "SimpleDegrader":
        return build_degrader(self)


class SimpleDegrader(Degrader):
    name = "simple"

    def __init__(self, config: SimpleDegradeConfig):
        self.config = config

    def degrade(self, images, seeds, aux=None):
        return [self._one(img, seed) for img, seed in zip(images, seeds)]

    def _one(self, img: np.ndarray, seed: int) -> DegradeResult:
        c = self.config
        rng = rng_from_seed(seed)
        sigma = float(rng.uniform(*c.blur_sigma))
        noise = float(rng.uniform(*c.noise_sigma))
        quality = int(round(rng.uniform(*c.jpeg_quality)))
        hq = mod_crop(img, c.scale) if c.resize_grid == "registered" else img
        x = cv2.GaussianBlur(hq.astype(np.float32), (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT_101)
        h, w = hq.shape[:2]
        size = (max(1, w // c.scale), max(1, h // c.scale))
        x = cv2.resize(x, size, interpolation=cv2.INTER_AREA)
        x = x + rng.standard_normal(x.shape).astype(np.float32) * noise
        x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(x, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        lq = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        params = {
            "chain": "simple",
            "scale": c.scale,
            "resize_grid": c.resize_grid,
            "ops": [
                {"op": "gaussian_blur", "sigma": sigma},
                {"op": "resize", "mode": "area", "size": [size[1], size[0]]},
                {"op": "gaussian_noise", "sigma": noise, "gray": False},
                {"op": "jpeg", "quality": quality, "encoder": "opencv"},
            ],
        }
        return DegradeResult(lq=lq, params=params, hq=hq if hq.shape != img.shape else None)
