"""Sanity checks: reject images no restorer should learn from, before any model looks at them."""
from __future__ import annotations

import numpy as np

from pairforge.batch import Rejection
from pairforge.filters.config import SanityFilterConfig


def check_image(img: np.ndarray, cfg: SanityFilterConfig) -> tuple[Rejection | None, dict]:
    """Return (rejection or None, measured statistics). Statistics are recorded either way."""
    stats: dict = {}
    if not isinstance(img, np.ndarray):
        return Rejection("sanity", "not_an_array", f"expected a numpy array, got {type(img).__name__}"), stats
    if img.ndim != 3 or img.shape[2] != 3:
        return Rejection("sanity", "channels", f"expected H x W x 3 RGB, got shape {list(img.shape)}", list(img.shape)), stats
    if img.dtype != np.uint8:
        if img.dtype.kind == "f" and not np.isfinite(img).all():
            return Rejection("sanity", "nan", "image contains NaN or inf"), stats
        return Rejection("sanity", "dtype", f"expected uint8, got {img.dtype}", str(img.dtype)), stats
    h, w = img.shape[:2]
    short, long = min(h, w), max(h, w)
    stats["size"] = [h, w]
    if short < cfg.min_size:
        return Rejection("sanity", "too_small", f"short side {short}px < min_size {cfg.min_size}", short), stats
    aspect = long / short
    stats["aspect"] = round(aspect, 4)
    if aspect > cfg.max_aspect:
        return Rejection("sanity", "aspect", f"aspect ratio {aspect:.2f} > max_aspect {cfg.max_aspect}", aspect), stats
    # luma statistics on a strided view: exact enough for a flatness test, cheap on large images
    step = max(1, short // 256)
    sub = img[::step, ::step].astype(np.float32)
    luma = sub @ np.array([0.299, 0.587, 0.114], np.float32)
    std = float(luma.std())
    stats["luma_std"] = round(std, 3)
    if std < cfg.min_std:
        return Rejection("sanity", "flat", f"luma std {std:.2f} < min_std {cfg.min_std} (blank or flat)", std), stats
    clipped = float((np.all(sub <= 0, axis=2) | np.all(sub >= 255, axis=2)).mean())
    stats["clipped_fraction"] = round(clipped, 4)
    if clipped > cfg.max_clipped:
        return Rejection("sanity", "saturated", f"{clipped:.1%} of pixels clipped > max_clipped {cfg.max_clipped:.0%}", clipped), stats
    return None, stats
