"""Full-reference fidelity of a pair: PSNR and SSIM of an LQ against its HQ.

Why a module of its own: every degrader records it (chain and real-world types alike), the real-world
severity bands are defined by it, and the run report falls back to it for runs that did not record it;
it needs only OpenCV and numpy.
"""
from __future__ import annotations

import cv2
import numpy as np


def psnr(hq: np.ndarray, lq: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (capped at 100 for identical ones), through OpenCV."""
    v = float(cv2.PSNR(np.ascontiguousarray(hq), np.ascontiguousarray(lq), 255.0))
    return round(min(v, 100.0), 4)


def ssim(hq: np.ndarray, lq: np.ndarray, win_size: int = 7, luma: bool = True) -> float:
    """SSIM with scikit-image's defaults (7 x 7 uniform window, sample covariance, K1 = 0.01,
    K2 = 0.03, data range 255, borders cropped), computed with OpenCV box filters in float32: of the
    luma (Y', as SR papers report it) by default, else the mean over R, G, B.

    Why not ``skimage.metrics.structural_similarity``: it costs ~100 ms at 512 px (RGB), as much as the
    degradation itself; this agrees with it to ~1e-5 and the luma version costs ~3 ms (the local means
    and mean squares come straight from the uint8 planes: ``boxFilter`` / ``sqrBoxFilter``)."""
    if luma and np.ndim(hq) == 3:
        hq = cv2.cvtColor(np.ascontiguousarray(hq), cv2.COLOR_RGB2GRAY)
        lq = cv2.cvtColor(np.ascontiguousarray(lq), cv2.COLOR_RGB2GRAY)
    if np.ndim(hq) == 3:
        return float(np.mean([ssim(hq[..., c], lq[..., c], win_size, luma=False) for c in range(hq.shape[2])]))
    a = np.ascontiguousarray(hq if hq.dtype == np.uint8 else np.asarray(hq, dtype=np.float32))
    b = np.ascontiguousarray(lq if lq.dtype == np.uint8 else np.asarray(lq, dtype=np.float32))
    win = max(3, min(win_size, min(a.shape[:2]) // 2 * 2 - 1))
    k, bt = (win, win), cv2.BORDER_REFLECT
    n = win * win
    cov = np.float32(n / (n - 1.0))
    ma = cv2.boxFilter(a, cv2.CV_32F, k, normalize=True, borderType=bt)
    mb = cv2.boxFilter(b, cv2.CV_32F, k, normalize=True, borderType=bt)
    vv = cv2.sqrBoxFilter(a, cv2.CV_32F, k, normalize=True, borderType=bt)
    vv += cv2.sqrBoxFilter(b, cv2.CV_32F, k, normalize=True, borderType=bt)
    vab = cv2.boxFilter(cv2.multiply(a, b, dtype=cv2.CV_32F), cv2.CV_32F, k, normalize=True, borderType=bt)
    c1, c2 = np.float32((0.01 * 255) ** 2), np.float32((0.03 * 255) ** 2)
    mab = ma * mb
    m2 = ma * ma
    m2 += mb * mb
    vab -= mab  # covariance (before the sample correction)
    vab *= np.float32(2.0) * cov
    vab += c2  # 2 s_ab + c2
    mab *= np.float32(2.0)
    mab += c1  # 2 m_a m_b + c1
    vv -= m2
    vv *= cov
    vv += c2  # s_aa + s_bb + c2
    m2 += c1  # m_a^2 + m_b^2 + c1
    mab *= vab
    m2 *= vv
    s = cv2.divide(mab, m2)
    pad = (win - 1) // 2
    return float(s[pad:s.shape[0] - pad, pad:s.shape[1] - pad].mean(dtype=np.float64))


def psnr_ssim(hq: np.ndarray, lq: np.ndarray) -> dict:
    """PSNR (dB, RGB, capped at 100 for identical images) and luma SSIM of LQ vs HQ; no SSIM for
    images smaller than its 7 x 7 window (it is undefined there, and NaN is not JSON)."""
    if np.array_equal(hq, lq):
        return {"psnr": 100.0, "ssim": 1.0}
    if min(hq.shape[:2]) < 7:
        return {"psnr": psnr(hq, lq)}
    return {"psnr": psnr(hq, lq), "ssim": round(ssim(hq, lq), 5)}


def pair_strength(hq: np.ndarray, lq: np.ndarray) -> dict:
    """PSNR/SSIM of any pair's LQ against its HQ; a smaller LQ is compared with the HQ area-resized to
    its size, so the number measures the degradation beyond the loss of resolution. Recorded per sample
    by the degraders (the run report reads it instead of decoding pairs again)."""
    if hq.shape[:2] != lq.shape[:2]:
        hq = cv2.resize(hq, (lq.shape[1], lq.shape[0]), interpolation=cv2.INTER_AREA)
    return psnr_ssim(hq, lq)
