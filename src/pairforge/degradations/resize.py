"""Resizing as Real-ESRGAN does it: ``torch.nn.functional.interpolate`` semantics without antialiasing.

``area`` is adaptive average pooling, ``bilinear``/``bicubic`` use half-pixel centres (align_corners
False, cubic a = -0.75, clamped borders). When a scale factor is given, torch maps coordinates with that
exact factor (not the rounded size ratio), which is what upstream's ``F.interpolate(out, scale_factor=s)``
does; we keep it.

On the CPU the same semantics run through faster kernels (measured in bench/bench_degrade.py: torch's CPU
bicubic/area upscaling costs 15-25 ms on a 512x512 image): OpenCV's float ``resize`` maps coordinates
exactly like torch when given ``fx``/``fy`` (no ``dsize``) and differs from ``F.interpolate`` by < 1e-4;
area upscaling (every output bin covers one or two input pixels) is four gathers.
"""
from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

ResizeMode = Literal["area", "bilinear", "bicubic", "nearest"]
RESIZE_MODES: tuple[str, ...] = ("area", "bilinear", "bicubic")


def scaled_size(h: int, w: int, scale: float) -> tuple[int, int]:
    """The output size ``F.interpolate(scale_factor=scale)`` produces (floor), at least 1 pixel."""
    return max(1, int(h * scale)), max(1, int(w * scale))


def _bins(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive-pooling bins [start, end) along one axis (torch's rule)."""
    i = np.arange(n_out)
    return (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)


def _area_up_hwc(a: np.ndarray, oh: int, ow: int) -> np.ndarray:
    sr, er = _bins(a.shape[0], oh)
    sc, ec = _bins(a.shape[1], ow)
    r = a[sr]
    r += a[er - 1]
    c = r[:, sc]
    c += r[:, ec - 1]
    c *= 0.25
    return c


_CV_MODES = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


def _resize_cpu(x: torch.Tensor, scale: float | None, size: tuple[int, int] | None, mode: str) -> torch.Tensor | None:
    """The CPU fast path, or None when it does not apply (then torch runs)."""
    from pairforge.degradations.filtering import from_hwc, to_hwc

    h, w = x.shape[-2:]
    if size is None:
        size = (int(h * scale), int(w * scale))
    oh, ow = size
    outs = []
    for b in range(x.shape[0]):
        a = to_hwc(x[b].float())
        if mode in _CV_MODES:
            if scale is not None:
                y = cv2.resize(a, (0, 0), fx=scale, fy=scale, interpolation=_CV_MODES[mode])
                if y.ndim == 2:
                    y = y[:, :, None]
                if y.shape[0] < oh or y.shape[1] < ow:
                    return None
                y = y[:oh, :ow]
            else:
                y = cv2.resize(a, (ow, oh), interpolation=_CV_MODES[mode])
        elif mode == "area" and oh >= h and ow >= w:
            y = _area_up_hwc(a, oh, ow)
        else:
            return None
        outs.append(from_hwc(y))
    return outs[0] if len(outs) == 1 else torch.cat(outs, 0)


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
            if x.device.type == "cpu" and not antialias:
                y = _resize_cpu(x, scale, None, mode)
                if y is not None:
                    return y
            kw = {} if mode in ("area", "nearest") else {"align_corners": False}
            if antialias and mode in ("bilinear", "bicubic"):
                kw["antialias"] = True
            return F.interpolate(x, scale_factor=scale, mode=mode, **kw)
    size = (max(1, int(size[0])), max(1, int(size[1])))
    if (h, w) == tuple(size):
        return x
    if x.device.type == "cpu" and not antialias:
        y = _resize_cpu(x, None, size, mode)
        if y is not None:
            return y
    kw = {} if mode in ("area", "nearest") else {"align_corners": False}
    if antialias and mode in ("bilinear", "bicubic"):
        kw["antialias"] = True
    return F.interpolate(x, size=size, mode=mode, **kw)
