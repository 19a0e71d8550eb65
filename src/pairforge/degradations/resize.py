"""Resizing as Real-ESRGAN does it: ``torch.nn.functional.interpolate`` without antialiasing.

``area`` is adaptive average pooling, ``bilinear``/``bicubic`` use half-pixel centres (align_corners
False). When a scale factor is given, torch maps coordinates with that exact factor (not the rounded
size ratio), which is what upstream's ``F.interpolate(out, scale_factor=s)`` does; we keep it.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

ResizeMode = Literal["area", "bilinear", "bicubic", "nearest"]
RESIZE_MODES: tuple[str, ...] = ("area", "bilinear", "bicubic")


def scaled_size(h: int, w: int, scale: float) -> tuple[int, int]:
    """The output size ``F.interpolate(scale_factor=scale)`` produces (floor), at least 1 pixel."""
    return max(1, int(h * scale)), max(1, int(w * scale))


def resize(
    x: torch.Tensor,
    *,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    mode: str = "bicubic",
    antialias: bool = False,
) -> torch.Tensor:
    """Resize (B, C, H, W) by ``scale`` or to ``size`` (h, w). Identity when nothing changes."""
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    h, w = x.shape[-2:]
    if size is None:
        if scale == 1.0:
            return x
        if int(h * scale) < 1 or int(w * scale) < 1:
            size = scaled_size(h, w, scale)  # too small for scale_factor: fall back to an explicit size
        else:
            kw = {} if mode in ("area", "nearest") else {"align_corners": False}
            if antialias and mode in ("bilinear", "bicubic"):
                kw["antialias"] = True
            return F.interpolate(x, scale_factor=scale, mode=mode, **kw)
    size = (max(1, int(size[0])), max(1, int(size[1])))
    if (h, w) == tuple(size):
        return x
    kw = {} if mode in ("area", "nearest") else {"align_corners": False}
    if antialias and mode in ("bilinear", "bicubic"):
        kw["antialias"] = True
    return F.interpolate(x, size=size, mode=mode, **kw)
