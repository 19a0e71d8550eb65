"""Sub-pixel registration of an LQ against its HQ: how far the LQ, resized back onto the HQ grid, is
shifted. Phase correlation per tile (scikit-image), so a drift that grows across the frame (a stretched
field of view) shows as large shifts in the far tiles."""
from __future__ import annotations

import numpy as np

from pairforge.degradations.resize import resize_image


def _gray(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) if x.ndim == 3 else x.astype(np.float64)


def tile_shifts(hq: np.ndarray, lq: np.ndarray, tile: int = 96, min_std: float = 8.0) -> np.ndarray:
    """(n, 2) sub-pixel shifts in HQ pixels (dy, dx) of the LQ resized back, one per textured tile.

    Both images are low-passed first (a Gaussian of about the LQ pixel size, the same for both, so it
    moves nothing): noise and JPEG blocks would otherwise dominate the correlation of small tiles."""
    import cv2
    from skimage.registration import phase_cross_correlation

    h, w = hq.shape[:2]
    up = resize_image(lq, (h, w), "bicubic")
    sigma = max(1.5, 1.5 * h / lq.shape[0])
    a = cv2.GaussianBlur(_gray(hq), (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    b = cv2.GaussianBlur(_gray(up), (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    out = []
    for t in range(0, h - tile + 1, tile):
        for l in range(0, w - tile + 1, tile):
            pa, pb = a[t : t + tile, l : l + tile], b[t : t + tile, l : l + tile]
            if pa.std() < min_std:
                continue
            win = np.outer(np.hanning(tile), np.hanning(tile))
            shift, _, _ = phase_cross_correlation((pa - pa.mean()) * win, (pb - pb.mean()) * win,
                                                  upsample_factor=50, normalization=None)
            out.append([shift[0], shift[1], (t + tile / 2) / h, (l + tile / 2) / w])
    return np.asarray(out, dtype=np.float64).reshape(-1, 4)


def drift(shifts: np.ndarray) -> dict:
    """Systematic shifts (medians of the signed per-tile shifts): overall and in each half of the frame
    along the shift's own axis (a stretched field of view moves the far half more), plus the median
    length of the per-tile shift vectors (which includes the estimator's noise)."""
    dy, dx, cy, cx = shifts.T
    med = lambda v: float(np.median(v)) if v.size else 0.0
    return {
        "dy": med(dy), "dx": med(dx),
        "dy_top": med(dy[cy < 0.5]), "dy_bottom": med(dy[cy >= 0.5]),
        "dx_left": med(dx[cx < 0.5]), "dx_right": med(dx[cx >= 0.5]),
        "median_length": med(np.hypot(dy, dx)),
    }


def worst_drift(shifts: np.ndarray) -> float:
    """The largest systematic shift in HQ pixels over the frame's halves (see :func:`drift`)."""
    d = drift(shifts)
    return max(abs(d[k]) for k in ("dy", "dx", "dy_top", "dy_bottom", "dx_left", "dx_right"))
