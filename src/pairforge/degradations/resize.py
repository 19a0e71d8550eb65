"""Resizing for the degradations: ``torch.nn.functional.interpolate`` semantics without antialiasing,
on one of two grids.

- ``registered`` (the default of every degrader): the output size is computed first (``int(h * s)``)
  and coordinates are mapped by the size ratio with the pixel-centre convention, so every resize maps
  the exact field of view of its input onto its output. A chain of such resizes ending at ``H/scale``
  keeps the LQ on the HQ's grid: the LQ resized back is not shifted anywhere in the frame.
- ``upstream``: what Real-ESRGAN's ``F.interpolate(out, scale_factor=s)`` does: the output size is
  ``floor(h * s)`` but coordinates are mapped by ``1/s``, so the output covers only
  ``floor(h * s) / s`` input pixels and a later resize to an exact size stretches it (0.3-0.6 px drift
  typical at the far edge). Kept for parity experiments against BasicSR.

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

from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

if TYPE_CHECKING:  # torch loads when a tensor is resized, not when the numpy helpers are imported
    import torch

ResizeMode = Literal["area", "bilinear", "bicubic", "nearest"]
RESIZE_MODES: tuple[str, ...] = ("area", "bilinear", "bicubic")
ResizeGrid = Literal["registered", "upstream"]
RESIZE_GRIDS: tuple[str, ...] = ("registered", "upstream")


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
    if len(outs) == 1:
        return outs[0]
    import torch

    return torch.cat(outs, 0)


def resize(
    x: torch.Tensor,
    *,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    mode: str = "bicubic",
    antialias: bool = False,
    grid: str = "upstream",
) -> torch.Tensor:
    """Resize (B, C, H, W) by ``scale`` or to ``size`` (h, w). Identity when nothing changes.

    ``grid`` decides how a ``scale`` maps coordinates (see the module docstring); a ``size`` always
    maps by the size ratio. On the registered grid ``nearest`` picks the pixel whose centre is nearest
    (torch's ``nearest-exact``); upstream's ``nearest`` floors and shifts by up to half an input pixel."""
    import torch.nn.functional as F

    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    if grid not in RESIZE_GRIDS:
        raise ValueError(f"resize grid must be one of {', '.join(RESIZE_GRIDS)}, got {grid!r}")
    h, w = x.shape[-2:]
    if grid == "registered":
        if mode == "nearest":
            mode = "nearest-exact"
        if size is None:
            if scale == 1.0:
                return x
            size = scaled_size(h, w, scale)
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
    kw = {} if mode in ("area", "nearest", "nearest-exact") else {"align_corners": False}
    if antialias and mode in ("bilinear", "bicubic"):
        kw["antialias"] = True
    return F.interpolate(x, size=size, mode=mode, **kw)


# -- numpy helpers (H x W x C images) for degraders outside the torch chain -------------------------

_CV_IMAGE_MODES = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
                   "nearest": cv2.INTER_NEAREST_EXACT, "lanczos": cv2.INTER_LANCZOS4}


def registered_size(h: int, w: int, scale: float) -> tuple[int, int]:
    """The size of an image of ``h x w`` scaled by ``scale`` (floor, at least 1 pixel); resize to it with
    :func:`resize_image`, which maps the exact field of view."""
    return scaled_size(h, w, scale)


def mod_crop(image: np.ndarray, scale: int) -> np.ndarray:
    """The top-left part of ``image`` whose sides are multiples of ``scale`` (so that ``H/scale`` is
    exact and an LQ of that size covers the same field of view); unchanged when smaller than ``scale``."""
    h, w = image.shape[:2]
    if h < scale or w < scale:
        return image
    return image[: h - h % scale, : w - w % scale]


def resize_image(image: np.ndarray, size: tuple[int, int], mode: str = "bicubic") -> np.ndarray:
    """Resize an H x W (x C) array to ``size`` = (h, w) on the registered grid: the whole field of view
    of the input maps onto the output (size-ratio coordinates, pixel centres at i + 0.5), so an image
    resized down and back up is not shifted anywhere in the frame. ``area`` averages exact fractional
    pixel areas when shrinking; ``nearest`` picks the nearest pixel centre. uint8 in, uint8 out
    (rounded); float in, float out (bicubic may overshoot: clip if needed)."""
    if mode not in _CV_IMAGE_MODES:
        raise ValueError(f"resize mode must be one of {', '.join(_CV_IMAGE_MODES)}, got {mode!r}")
    oh, ow = max(1, int(size[0])), max(1, int(size[1]))
    if image.shape[:2] == (oh, ow):
        return image
    y = cv2.resize(image, (ow, oh), interpolation=_CV_IMAGE_MODES[mode])
    if y.ndim == 2 and image.ndim == 3:
        y = y[:, :, None]
    return y
