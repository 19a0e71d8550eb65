"""Measured strength of a degradation: full-reference fidelity plus type-specific signatures.

Why: a user must be able to filter pairs whose degradation came out too weak (or too strong) after the
fact, and the tests must be able to check that each type really produces its physical signature. All
functions take uint8 or float images and return plain floats.
"""
from __future__ import annotations

import itertools

import cv2
import numpy as np

from pairforge.degradations.realworld.common import (
    _LINEAR_LUT,
    image_to_linear,
    luminance,
    srgb_to_linear,
    to_float,
)


def gray(image: np.ndarray) -> np.ndarray:
    """Luma in [0, 1] of an RGB image (uint8 or float)."""
    return luminance(to_float(image))


def laplacian_energy(g: np.ndarray) -> float:
    """Mean squared Laplacian: the high-frequency energy of a gray image."""
    lap = cv2.Laplacian(np.asarray(g, dtype=np.float32), cv2.CV_32F, ksize=1)
    return float(np.mean(lap[2:-2, 2:-2] ** 2))


def directional_energy(g: np.ndarray, angle_deg: float) -> float:
    """Mean squared derivative along a direction (angle from +x, image coordinates with y down)."""
    g = np.asarray(g, dtype=np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    a = np.deg2rad(angle_deg)
    d = gx * np.cos(a) + gy * np.sin(a)
    return float(np.mean(d[2:-2, 2:-2] ** 2))


def blockiness(g: np.ndarray, block: int = 8) -> float:
    """Ratio of the mean absolute step across block boundaries to the mean step elsewhere (1 = none);
    JPEG's 8 x 8 DCT grid makes it rise above 1. (Sums in float64: boundary steps by strided slices,
    the rest as total minus boundary; no masks, no copies.)"""
    g = np.asarray(g, dtype=np.float32)
    dx = np.abs(np.diff(g, axis=1))  # dx[:, j] = step between column j and j+1
    dy = np.abs(np.diff(g, axis=0))
    at_x, at_y = dx[:, block - 1::block], dy[block - 1::block, :]
    s_at = float(at_x.sum(dtype=np.float64) + at_y.sum(dtype=np.float64))
    n_at = at_x.size + at_y.size
    s_all = float(dx.sum(dtype=np.float64) + dy.sum(dtype=np.float64))
    n_off = dx.size + dy.size - n_at
    if n_at == 0:
        return float("nan")  # no block boundary inside the image (as the mean of an empty set)
    return float((s_at / n_at) / max((s_all - s_at) / n_off if n_off else float("nan"), 1e-6))


def spectral_peak_fraction(residual: np.ndarray, top: float = 0.005) -> float:
    """Share of a residual's (windowed, DC-free) spectral energy held by its strongest ``top`` share of
    frequency bins: ~0.03 for white noise, large for narrow-band periodic patterns such as moire."""
    r = np.asarray(residual, dtype=np.float64)
    r = r - r.mean()
    h, w = r.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    p = np.abs(np.fft.fft2(r * win)) ** 2
    p[0, 0] = 0.0
    p[:2, :2] = p[-1:, :2] = p[:2, -1:] = p[-1:, -1:] = 0.0  # leakage of the mean
    total = p.sum()
    if total <= 0:
        return 0.0
    k = max(1, round(top * p.size))
    return float(np.sort(p.ravel())[-k:].sum() / total)


def local_std(g: np.ndarray, size: int) -> np.ndarray:
    g = np.asarray(g, dtype=np.float32)
    m = cv2.blur(g, (size, size), borderType=cv2.BORDER_REFLECT_101)
    m2 = cv2.blur(g * g, (size, size), borderType=cv2.BORDER_REFLECT_101)
    return np.sqrt(np.maximum(m2 - m * m, 0.0))


def streak_orientation(residual: np.ndarray) -> dict:
    """Dominant orientation (degrees in [0, 180), image coordinates) of line structures in a residual,
    from the structure tensor, and its coherence (0 = isotropic, 1 = perfectly oriented)."""
    r = np.asarray(residual, dtype=np.float32)
    gx = cv2.Sobel(r, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(r, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jyy, jxy = float(np.sum(gx * gx)), float(np.sum(gy * gy)), float(np.sum(gx * gy))
    # gradient orientation; lines run perpendicular to it
    theta_grad = 0.5 * np.degrees(np.arctan2(2 * jxy, jxx - jyy))
    coherence = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / max(jxx + jyy, 1e-12)
    return {"angle": float((theta_grad + 90.0) % 180.0), "coherence": float(coherence)}


def angle_difference(a: float, b: float) -> float:
    """Difference of two line orientations in degrees, modulo 180 (0..90)."""
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def radial_profile(delta: np.ndarray, center_xy: tuple[float, float], edges: list[float]) -> list[float | None]:
    """Mean of ``delta`` in rings around a point (ring edges in pixels; None for a ring off the image)."""
    h, w = delta.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(xx - center_xy[0], yy - center_xy[1])
    out = []
    for lo, hi in itertools.pairwise(edges):
        m = (r >= lo) & (r < hi)
        out.append(float(delta[m].mean()) if m.any() else None)
    return out


def relative_shadow_noise(image: np.ndarray, shadow: np.ndarray) -> float:
    """High-pass noise relative to the local mean inside a shadow mask: what the eye sees as noise."""
    g = gray(image).astype(np.float32)
    hp = g - cv2.GaussianBlur(g, (0, 0), sigmaX=1.5)
    mean = max(float(g[shadow].mean()), 1.0 / 255.0)
    return float(hp[shadow].std() / mean)


def linear_noise_fit(hq: np.ndarray, lq: np.ndarray, bins: int = 12) -> dict:
    """Fit var(LQ - HQ) = a * HQ + b in linear light over intensity bins (per channel pooled): the
    signal dependence of the noise (Poisson-Gaussian sensor noise has a = 1/photons, b = read^2)."""
    step = max(1, min(hq.shape[:2]) // 192)  # every step-th row and column: the bins stay well filled
    hq, lq = hq[::step, ::step], lq[::step, ::step]
    lo, hi = 0.02, 0.8
    if hq.dtype == np.uint8 and lq.dtype == np.uint8:
        # x depends on the HQ code only: sums per code (256 bins, one bincount each), then per bin
        codes = np.ascontiguousarray(hq).ravel()
        y = (image_to_linear(np.ascontiguousarray(lq)) - image_to_linear(np.ascontiguousarray(hq))).ravel()
        y = y.astype(np.float64)
        n_v = np.bincount(codes, minlength=256)
        sy_v = np.bincount(codes, weights=y, minlength=256)
        syy_v = np.bincount(codes, weights=y * y, minlength=256)
        x_v = _LINEAR_LUT.astype(np.float64)
        b_v = np.floor((_LINEAR_LUT - np.float32(lo)) * np.float32(bins / (hi - lo))).astype(np.int64)
        ok = (b_v >= 0) & (b_v < bins)
        cnt = np.bincount(b_v[ok], weights=n_v[ok], minlength=bins)
        sx = np.bincount(b_v[ok], weights=(n_v * x_v)[ok], minlength=bins)
        sy = np.bincount(b_v[ok], weights=sy_v[ok], minlength=bins)
        syy = np.bincount(b_v[ok], weights=syy_v[ok], minlength=bins)
    else:
        x = srgb_to_linear(to_float(hq)).ravel()
        y = srgb_to_linear(to_float(lq)).ravel() - x
        # the bin of every value, then per-bin count, sum and sum of squares (float64) by bincount
        b = np.floor((x - lo) * (bins / (hi - lo))).astype(np.int64)
        ok = (b >= 0) & (b < bins)
        b, xo, yo = b[ok], x[ok].astype(np.float64), y[ok].astype(np.float64)
        cnt = np.bincount(b, minlength=bins)
        sx = np.bincount(b, weights=xo, minlength=bins)
        sy = np.bincount(b, weights=yo, minlength=bins)
        syy = np.bincount(b, weights=yo * yo, minlength=bins)
    full = cnt >= 50
    xs = list(sx[full] / cnt[full])
    my = sy[full] / cnt[full]
    vs = list(np.maximum(syy[full] / cnt[full] - my * my, 0.0))
    if len(xs) < 3:
        return {"a": None, "b": None}  # not measurable (too few pixels per intensity bin)
    a, b = np.polyfit(np.array(xs), np.array(vs), 1)
    return {"a": float(a), "b": float(b)}
