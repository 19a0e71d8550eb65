"""Compression artifacts: JPEG / WebP at random quality and chroma subsampling, possibly through
several "platforms" (resize + re-encode, repeated).

Physical (well, engineering) model. Lossy codecs transform blocks (JPEG: 8 x 8 DCT on luma and on
chroma that is usually subsampled 4:2:0; WebP/VP8: 4 x 4 transforms in 16 x 16 macroblocks), quantise
the coefficients and drop high frequencies: blocking on the transform grid, ringing at edges, colour
bleeding from chroma subsampling. An image shared on the web is typically decoded, resized and
re-encoded by every platform it passes through; the artifacts of earlier generations survive and get
resampled. Each pass here is (resize by ``scale`` of the original size, encode, decode); the last pass
encodes at the original size (the serving platform), so the final 8 x 8 grid is aligned with the HQ.
Encoding is OpenCV's libjpeg / libwebp (``cv2.imencode``).
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
    integer,
    require_rgb8,
    uniform,
    weighted_choice,
)
from pairforge.degradations.realworld.strength import blockiness, gray
from pairforge.registry import REALWORLD_TYPES

SUBSAMPLING = {
    "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    "420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
}
INTERP = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


@REALWORLD_TYPES.register("compression", type="pairforge.degradations.realworld.compression:Compression", rank=90)
class CompressionConfig(TypeConfig):
    codecs: dict[Literal["jpeg", "webp"], float] = Field(
        default_factory=lambda: {"jpeg": 0.75, "webp": 0.25}, description="relative weights of the codecs")
    subsampling: dict[Literal["444", "422", "420"], float] = Field(
        default_factory=lambda: {"420": 0.7, "422": 0.15, "444": 0.15}, description="JPEG chroma subsampling")
    quality: IntRange | None = Field(None, description="encoder quality (1-100)")
    passes: IntRange | None = Field(None, description="number of encode generations (platforms)")
    rescale: FloatRange = Field((0.5, 1.0), description="resize factor of intermediate generations")

    LEVELS: ClassVar[dict] = {
        "light": {"quality": (65, 90), "passes": (1, 1)},
        "medium": {"quality": (35, 65), "passes": (1, 2)},
        "heavy": {"quality": (10, 35), "passes": (2, 3)},
    }


def encode_decode(rgb: np.ndarray, codec: str, quality: int, subsampling: str = "420") -> np.ndarray:
    """One lossy generation through OpenCV's encoder and decoder."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if codec == "jpeg":
        flags = [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_SAMPLING_FACTOR, SUBSAMPLING[subsampling]]
        ok, buf = cv2.imencode(".jpg", bgr, flags)
    elif codec == "webp":
        ok, buf = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, int(max(1, quality))])
    else:
        raise ValueError(f"unknown codec {codec!r} (allowed: jpeg, webp)")
    if not ok:
        raise RuntimeError(f"{codec} encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


class Compression(RealWorldType):
    name = "compression"
    config_cls = CompressionConfig

    def _sample(self, rng, level):
        c = self.config
        n = integer(rng, c.range("passes", level))
        q = c.range("quality", level)
        passes = []
        for i in range(n):
            codec = weighted_choice(rng, c.codecs)
            p = {
                "codec": codec,
                "quality": integer(rng, q),
                "subsampling": weighted_choice(rng, c.subsampling) if codec == "jpeg" else "420",
                "scale": 1.0 if i == n - 1 else uniform(rng, c.rescale),
                "interp": weighted_choice(rng, {"area": 1.0, "linear": 1.0, "cubic": 1.0}),
            }
            passes.append(p)
        return {"passes": passes}

    def apply(self, image, params, aux=None):
        require_rgb8(image)
        h, w = image.shape[:2]
        x = image
        for p in params["passes"]:
            size = (max(8, round(w * p["scale"])), max(8, round(h * p["scale"])))
            if (size[1], size[0]) != x.shape[:2]:
                x = cv2.resize(x, size, interpolation=INTERP[p["interp"]])
            x = encode_decode(x, p["codec"], p["quality"], p["subsampling"])
        if x.shape[:2] != (h, w):
            x = cv2.resize(x, (w, h), interpolation=cv2.INTER_CUBIC)
        return x

    def statistic(self, hq, lq, params, aux=None):
        b0, b1 = blockiness(gray(hq)), blockiness(gray(lq))
        return {"blockiness": b1, "blockiness_gain": b1 - b0}
