"""Reject broken generations before anything downstream sees them, with a reason.

fp16 overflow in a VAE gives NaN/inf (decoded as black), a collapsed sampler gives a flat image; both
would poison a training set silently. The check runs on the decoder's float output, before clipping.
"""
from __future__ import annotations

import numpy as np

from pairforge.batch import Rejection
from pairforge.synthesis.config import OutputChecks

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def check_generation(img: np.ndarray, checks: OutputChecks, stage: str = "synthesis") -> Rejection | None:
    """``img``: float H x W x 3 in [0, 1] as decoded. None if usable, else why not."""
    if checks.nonfinite:
        bad = ~np.isfinite(img)
        if bad.any():
            frac = float(bad.any(axis=-1).mean())
            return Rejection(stage, "nonfinite", f"decoded image has NaN/inf values in {frac:.1%} of pixels "
                             "(numerical overflow; try float32 VAE or bfloat16)", frac)
    x = np.clip(np.nan_to_num(img, nan=0.0), 0.0, 1.0) * 255.0
    peak = float(x.max())
    if peak < checks.black_max:
        return Rejection(stage, "black", f"image is black (brightest pixel {peak:.1f} < {checks.black_max})", peak)
    std = float((x @ _LUMA).std())
    if std < checks.blank_min_std:
        return Rejection(stage, "blank", f"image is flat (luma std {std:.2f} < {checks.blank_min_std})", std)
    return None


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float [0, 1] H x W x 3 -> uint8 RGB (rounded, clipped)."""
    x = np.clip(np.nan_to_num(img, nan=0.0), 0.0, 1.0)
    return np.ascontiguousarray(np.rint(x * 255.0).astype(np.uint8))
