"""Sanity checks: reject images no restorer should learn from, before any model looks at them.

The checks run in order and the first failure wins: missing / wrong type, non-finite values (a float
image with NaN or inf, e.g. a VAE decode that overflowed in fp16), wrong dtype or channel count, too
small or too large, extreme aspect ratio, blank / flat, clipped black-or-white, oversaturated colour.
A NaN image that was already cast to uint8 usually arrives black: the ``flat`` rule catches it.
"""
from __future__ import annotations

import numpy as np

from pairforge.batch import Rejection
from pairforge.filters.config import SanityFilterConfig

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def check_image(img: np.ndarray | None, cfg: SanityFilterConfig, stage: str = "sanity") -> tuple[Rejection | None, dict]:
    """Return (rejection or None, measured statistics). Statistics are recorded either way."""
    stats: dict = {}
    if img is None:
        return Rejection(stage, "missing", "the sample has no image"), stats
    if not isinstance(img, np.ndarray):
        return Rejection(stage, "not_an_array", f"expected a numpy array, got {type(img).__name__}"), stats
    if img.dtype.kind in "fc" and img.size and not np.isfinite(img).all():
        bad = float((~np.isfinite(img)).mean())
        return Rejection(stage, "nan", f"image contains NaN or inf ({bad:.2%} of values)", bad), stats
    if img.ndim != 3 or img.shape[2] != 3:
        return Rejection(stage, "channels", f"expected H x W x 3 RGB, got shape {list(img.shape)}", list(img.shape)), stats
    if img.dtype != np.uint8:
        return Rejection(stage, "dtype", f"expected uint8, got {img.dtype}", str(img.dtype)), stats
    h, w = img.shape[:2]
    short, long = min(h, w), max(h, w)
    stats["size"] = [h, w]
    if short < cfg.min_size:
        return Rejection(stage, "too_small", f"short side {short}px < min_size {cfg.min_size}", short), stats
    if cfg.max_pixels is not None and h * w > cfg.max_pixels:
        return Rejection(stage, "too_large", f"{h}x{w} = {h * w} pixels > max_pixels {cfg.max_pixels}", h * w), stats
    aspect = long / short
    stats["aspect"] = round(aspect, 4)
    if aspect > cfg.max_aspect:
        return Rejection(stage, "aspect", f"aspect ratio {aspect:.2f} > max_aspect {cfg.max_aspect}", aspect), stats
    # statistics on a strided view: exact enough for these tests, cheap on large images
    step = max(1, short // 256)
    sub = img[::step, ::step]
    luma = sub.astype(np.float32) @ _LUMA
    std = float(luma.std())
    stats["luma_std"] = round(std, 3)
    if std < cfg.min_std:
        return Rejection(stage, "flat", f"luma std {std:.2f} < min_std {cfg.min_std} (blank or flat)", std), stats
    # per-pixel channel tests as elementwise ops on the three channel planes (the same booleans as
    # (sub == 0).all(axis=2) etc., ~4x cheaper than reducing over a length-3 axis)
    r, g, b = sub[..., 0], sub[..., 1], sub[..., 2]
    clipped = float((((r | g | b) == 0) | ((r & g & b) == 255)).mean())
    stats["clipped_fraction"] = round(clipped, 4)
    if clipped > cfg.max_clipped:
        return Rejection(stage, "saturated", f"{clipped:.1%} of pixels clipped > max_clipped {cfg.max_clipped:.0%}", clipped), stats
    chan = float(((np.minimum(np.minimum(r, g), b) == 0) | (np.maximum(np.maximum(r, g), b) == 255)).mean())
    stats["channel_clipped_fraction"] = round(chan, 4)
    if cfg.max_channel_clipped is not None and chan > cfg.max_channel_clipped:
        return (
            Rejection(
                stage,
                "oversaturated",
                f"{chan:.1%} of pixels have a clipped channel > max_channel_clipped {cfg.max_channel_clipped:.0%}",
                chan,
            ),
            stats,
        )
    return None, stats
