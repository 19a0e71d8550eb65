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

On the CPU the same semantics run in numpy/OpenCV (:func:`resize_hwc`, no torch; measured in
bench/bench_degrade.py: torch's CPU bicubic/area upscaling costs 15-25 ms on a 512x512 image): OpenCV's
float ``resize`` maps coordinates exactly like torch when given ``fx``/``fy`` (no ``dsize``) and by the
size ratio when given ``dsize``, and differs from ``F.interpolate`` by < 1e-4; ``area`` is adaptive
average pooling written out (separable: gathers, block means or running sums). OpenCV's own INTER_AREA
is not used for it: it averages fractional pixel areas, which registers as well but is not torch's
``area`` (and would not keep the parity tests against BasicSR meaningful).
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


def _area_hwc(a: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """torch's ``area`` (adaptive average pooling: output pixel i averages input pixels
    ``[floor(i*n/m), ceil((i+1)*n/m))``) of an H x W x C float32 image, by the cheapest exact route:

    - every bin one or two pixels wide (upscaling, mild shrinking): the mean of a 1-2 x 1-2 block is a
      bilinear sample at the block centre with weights 0 or 1/2, i.e. one ``cv2.remap``;
    - integer factors on both axes: equal blocks, ``cv2.resize`` INTER_AREA (a block mean there);
    - otherwise: differences of a float64 integral image (``cv2.integral``) at the bin edges."""
    h, w, c = a.shape
    sr, er = _bins(h, oh)
    sc, ec = _bins(w, ow)
    if int((er - sr).max()) <= 2 and int((ec - sc).max()) <= 2:
        my = ((sr + er - 1) * 0.5).astype(np.float32)
        mx = ((sc + ec - 1) * 0.5).astype(np.float32)
        mapx = np.ascontiguousarray(np.broadcast_to(mx[None, :], (oh, ow)))
        mapy = np.ascontiguousarray(np.broadcast_to(my[:, None], (oh, ow)))
        y = cv2.remap(a, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return y.reshape(oh, ow, c)
    if h % oh == 0 and w % ow == 0:
        return cv2.resize(a, (ow, oh), interpolation=cv2.INTER_AREA).reshape(oh, ow, c)
    integral = cv2.integral(a, sdepth=cv2.CV_64F).reshape(h + 1, w + 1, c)
    rows = (integral[er] - integral[sr]).reshape(oh, (w + 1) * c)
    ch = np.arange(c)
    out = np.take(rows, (ec[:, None] * c + ch).ravel(), axis=1)
    out -= np.take(rows, (sc[:, None] * c + ch).ravel(), axis=1)
    out *= (1.0 / ((er - sr)[:, None] * (ec - sc)[None, :])).repeat(c, axis=1)
    return out.astype(np.float32).reshape(oh, ow, c)


def _nearest_index(n_in: int, n_out: int, scale: float | None, exact: bool) -> np.ndarray:
    """Source indices of torch's ``nearest`` (``floor(dst * r)``) or ``nearest-exact``
    (``floor((dst + 0.5) * r)``), ``r`` = 1/scale when a scale factor maps coordinates, else the size ratio
    (float32 arithmetic, as torch)."""
    r = np.float32(1.0 / scale) if scale is not None else np.float32(n_in / n_out)
    d = np.arange(n_out, dtype=np.float32)
    if exact:
        d += np.float32(0.5)
    return np.minimum(np.floor(d * r).astype(np.int64), n_in - 1)


_CV_MODES = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


def _antialiased_hwc(a: np.ndarray, oh: int, ow: int, mode: str, scale: float | None) -> np.ndarray:
    """torch's ``antialias=True`` bilinear/bicubic, which follows Pillow's resampling (support widened by
    the shrink factor, cubic a = -0.5): Pillow on float32 planes. A scale factor maps coordinates by
    ``1/scale`` (the source box is ``ow/scale x oh/scale``), a size by the size ratio."""
    from PIL import Image

    flt = Image.Resampling.BILINEAR if mode == "bilinear" else Image.Resampling.BICUBIC
    h, w = a.shape[:2]
    box = (0.0, 0.0, float(w), float(h)) if scale is None else (0.0, 0.0, ow / scale, oh / scale)
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(a[:, :, i], dtype=np.float32), mode="F")
                         .resize((ow, oh), flt, box=box)) for i in range(a.shape[2])]
    return np.stack(planes, axis=-1)


def _plan(h: int, w: int, scale: float | None, size: tuple[int, int] | None, mode: str, grid: str
          ) -> tuple[tuple[int, int] | None, float | None, str]:
    """The output size (None: identity), the scale factor that maps coordinates (None: the size ratio)
    and the mode, for :func:`resize`'s arguments."""
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    if grid not in RESIZE_GRIDS:
        raise ValueError(f"resize grid must be one of {', '.join(RESIZE_GRIDS)}, got {grid!r}")
    if grid == "registered" and mode == "nearest":
        mode = "nearest-exact"
    if size is None:
        if scale == 1.0:
            return None, None, mode
        size = scaled_size(h, w, scale)
        if grid == "registered" or int(h * scale) < 1 or int(w * scale) < 1:
            scale = None  # size-ratio mapping (upstream's too-small fallback is an explicit size too)
    else:
        scale = None
        size = (max(1, int(size[0])), max(1, int(size[1])))
    if (h, w) == tuple(size) and scale is None:
        return None, None, mode  # (a scale factor still maps coordinates by 1/scale: upstream's drift)
    return size, scale, mode


def resize_hwc(
    a: np.ndarray,
    *,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    mode: str = "bicubic",
    antialias: bool = False,
    grid: str = "upstream",
) -> np.ndarray:
    """:func:`resize` of one H x W x C float32 image with numpy/OpenCV (what the CPU chain runs; no torch).

    Same semantics as ``F.interpolate`` (within float32 rounding, < 1e-4): OpenCV's float bilinear/bicubic
    use half-pixel centres, a = -0.75 and clamped borders like torch, and map coordinates by the exact
    factor when given ``fx``/``fy`` (the upstream grid) and by the size ratio when given a size (the
    registered grid); ``area`` is torch's adaptive average pooling (integer bins, not OpenCV's
    fractional INTER_AREA); ``nearest``/``nearest-exact`` are index gathers."""
    h, w = a.shape[:2]
    out_size, scale, mode = _plan(h, w, scale, size, mode, grid)
    if out_size is None:
        return a
    oh, ow = out_size
    squeeze = a.ndim == 2
    if squeeze:
        a = a[:, :, None]
    if mode in _CV_MODES and antialias:
        y = _antialiased_hwc(a, oh, ow, mode, scale)
    elif mode in _CV_MODES:
        if scale is not None:
            y = cv2.resize(a, (0, 0), fx=scale, fy=scale, interpolation=_CV_MODES[mode])[:oh, :ow]
        else:
            y = cv2.resize(a, (ow, oh), interpolation=_CV_MODES[mode])
        if y.ndim == 2:
            y = y[:, :, None]
    elif mode == "area":
        y = _area_hwc(a, oh, ow)
    elif mode in ("nearest", "nearest-exact"):
        exact = mode == "nearest-exact"
        y = a[_nearest_index(h, oh, scale, exact)][:, _nearest_index(w, ow, scale, exact)]
    else:
        raise ValueError(f"unknown resize mode {mode!r}")
    return y[:, :, 0] if squeeze else y


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
    (torch's ``nearest-exact``); upstream's ``nearest`` floors and shifts by up to half an input pixel.
    CPU tensors go through :func:`resize_hwc` per sample; other devices through ``F.interpolate``."""
    import torch
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    out_size, s, m = _plan(h, w, scale, size, mode, grid)
    if out_size is None:
        return x
    if x.device.type == "cpu":
        from pairforge.degradations.filtering import from_hwc, to_hwc

        outs = [from_hwc(resize_hwc(to_hwc(x[b].float()), scale=scale, size=size, mode=mode, antialias=antialias,
                                    grid=grid)) for b in range(x.shape[0])]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 0)
    kw = {} if m in ("area", "nearest", "nearest-exact") else {"align_corners": False}
    if antialias and m in ("bilinear", "bicubic"):
        kw["antialias"] = True
    if s is not None:
        return F.interpolate(x, scale_factor=s, mode=m, **kw)
    return F.interpolate(x, size=out_size, mode=m, **kw)


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
