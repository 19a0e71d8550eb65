"""Image sources: an index-addressable list of samples, so that shard ``s`` can load its own indices
on any worker, and a rerun loads exactly the same pixels."""
from __future__ import annotations

import abc

import numpy as np

from pairforge.io.images import ImageRejected
from pairforge.sources.config import CropConfig

__all__ = ["ImageSource", "ImageRejected", "crop_image", "tile_origins"]


class ImageSource(abc.ABC):
    """``len(source)`` samples; ``load(index, rng)`` returns (uint8 RGB image, provenance dict) or
    raises :class:`ImageRejected` with a rule and reason."""

    kind: str = "source"

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def load(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]: ...

    def describe(self) -> dict:
        return {"kind": self.kind, "samples": len(self)}


def tile_origins(h: int, w: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners of a grid of size x size tiles covering (h, w) with the given stride."""
    if h < size or w < size:
        return []
    ys = list(range(0, h - size + 1, stride))
    xs = list(range(0, w - size + 1, stride))
    return [(y, x) for y in ys for x in xs]


def crop_image(img: np.ndarray, crop: CropConfig, rng: np.random.Generator, name: str) -> tuple[np.ndarray, list[int] | None]:
    """Apply a none/center/random crop; returns (image, [y, x, h, w] or None)."""
    if crop.mode == "none":
        return img, None
    h, w = img.shape[:2]
    s = crop.size
    if h < s or w < s:
        raise ImageRejected("too_small", f"{name}: {h}x{w} is smaller than the {s}px crop", [h, w])
    if crop.mode == "center":
        y, x = (h - s) // 2, (w - s) // 2
    elif crop.mode == "random":
        y = int(rng.integers(0, h - s + 1))
        x = int(rng.integers(0, w - s + 1))
    else:
        raise ValueError(f"crop mode {crop.mode!r} is not valid here")
    return np.ascontiguousarray(img[y : y + s, x : x + s]), [y, x, s, s]
