"""Additive Gaussian (colour, gray, channel-correlated; optionally multiplicative = speckle) and Poisson
noise on (B, C, H, W) float images in [0, 1].

Every sample draws its noise field from its own generator (``seeds[b]``), so a sample's noise never
depends on what else is in the batch. Sigmas are in 0-255 units as in Real-ESRGAN's options.

The CPU chain runs the numpy functions (:func:`gaussian_noise_hwc`, :func:`poisson_noise_hwc`): noise from
numpy's generator (float32 ziggurat normals; Poisson by table inversion or numpy's sampler), no torch.
The tensor functions run the same numpy code per sample for CPU tensors and torch's generators on CUDA
(a CUDA run and a CPU run of the same seed therefore draw different, equally distributed noise fields).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

from pairforge.seeding import rng_from_seed, torch_generator

if TYPE_CHECKING:  # torch loads for tensors (the CUDA path), not with this module
    import torch

#: Luma weights of torchvision's rgb_to_grayscale (BasicSR's gray Poisson noise uses them).
LUMA = (0.2989, 0.587, 0.114)


def standard_normal_hwc(seed: int, h: int, w: int, channels: int) -> np.ndarray:
    """A float32 standard normal field H x W x C from the sample's own numpy generator."""
    return rng_from_seed(seed).standard_normal((h, w, channels), dtype=np.float32)


def _randn_torch(x1: torch.Tensor, channels: int, seed: int) -> torch.Tensor:
    """Standard normal field shaped like sample ``x1`` (1, C, H, W) but with ``channels`` channels, laid
    out channels-last, from a torch generator on ``x1``'s device (the CUDA path)."""
    import torch

    _, _, h, w = x1.shape
    g = torch_generator(seed, device=x1.device.type if x1.device.type != "cuda" else str(x1.device))
    return torch.randn((1, h, w, channels), generator=g, device=x1.device, dtype=torch.float32).permute(0, 3, 1, 2)


def _cov_factor(cov: np.ndarray) -> np.ndarray:
    # the same factorisation numpy's multivariate_normal uses (SVD), which also tolerates the
    # not-quite-PSD matrices the elementwise abs above can produce
    _, s, vh = np.linalg.svd(cov)
    return np.sqrt(s)[:, None] * vh


def _check_kind(kind: str, cov) -> None:
    if kind not in ("gray", "color", "correlated"):
        raise ValueError(f"unknown noise kind {kind!r}")
    if kind == "correlated" and cov is None:
        raise ValueError("correlated noise needs a covariance")


def gaussian_noise_hwc(
    img: np.ndarray,
    sigma: float,
    kind: str,
    seed: int,
    cov: list | None = None,
    multiplicative: bool = False,
    clip: bool = True,
) -> np.ndarray:
    """:func:`gaussian_noise` of one H x W x C float32 image (numpy generator; what the CPU chain runs)."""
    _check_kind(kind, cov)
    h, w, c = img.shape
    z = standard_normal_hwc(seed, h, w, 1 if kind == "gray" else c)
    return add_noise_hwc(img, z, sigma, kind, cov, multiplicative, clip)


def add_noise_hwc(img: np.ndarray, z: np.ndarray, sigma: float, kind: str, cov, multiplicative: bool,
                  clip: bool) -> np.ndarray:
    """Add a drawn standard-normal field ``z`` (H x W x C', C' = 1 for gray) as noise (numpy/OpenCV)."""
    if kind == "correlated":
        n = cv2.transform(z, _cov_factor(np.asarray(cov, dtype=np.float64)).T.astype(np.float32))
        n = n.reshape(z.shape)
    else:
        n = z * np.float32(sigma / 255.0)
    if multiplicative:
        n = img * n  # (broadcasts a gray field over the channels)
    out = img + n
    if clip:
        np.clip(out, 0.0, 1.0, out=out)
    return out


def gaussian_noise(
    x: torch.Tensor,
    sigmas: Sequence[float],
    kinds: Sequence[str],
    seeds: Sequence[int],
    covs: Sequence[list | None] | None = None,
    multiplicative: bool = False,
    clip: bool = True,
) -> torch.Tensor:
    """Add N(0, sigma/255) noise per sample: ``kind`` "color" (independent channels), "gray" (one field
    for all channels) or "correlated" (3-channel noise with covariance ``covs[b]``). With
    ``multiplicative`` the noise is scaled by the image (speckle). Clamped to [0, 1] when ``clip``.
    CPU tensors: :func:`gaussian_noise_hwc` per sample; other devices: torch's generator there."""
    import torch

    from pairforge.degradations.filtering import from_hwc, to_hwc

    outs = []
    for b in range(x.shape[0]):
        xb = x[b : b + 1]
        cov = covs[b] if covs else None
        _check_kind(kinds[b], cov)
        if x.device.type == "cpu":
            outs.append(from_hwc(gaussian_noise_hwc(to_hwc(xb[0]), sigmas[b], kinds[b], seeds[b], cov, multiplicative, clip)))
            continue
        z = _randn_torch(xb, 1 if kinds[b] == "gray" else xb.shape[1], seeds[b])  # (1, C', H, W) view of (1, H, W, C')
        outs.append(add_noise_torch(xb, z, sigmas[b], kinds[b], cov, multiplicative, clip))
    return outs[0] if len(outs) == 1 else torch.cat(outs, 0)


def add_noise_torch(xb, z, sigma, kind, cov, multiplicative, clip) -> torch.Tensor:
    """Add a drawn standard-normal field ``z`` as noise with torch ops (any device; what CUDA runs)."""
    import torch

    if kind == "correlated":
        a = torch.as_tensor(_cov_factor(np.asarray(cov, dtype=np.float64)), dtype=torch.float32, device=xb.device)
        n = (z.permute(0, 2, 3, 1) @ a).permute(0, 3, 1, 2)
    else:
        n = z * (sigma / 255.0)
    out = xb + (xb * n if multiplicative else n)
    return torch.clamp(out, 0, 1) if clip else out


def quantize8(x: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit grid and back to [0, 1] floats."""
    import torch

    return torch.clamp(torch.round(x * 255.0), 0, 255) / 255.0


def distinct_levels(q: torch.Tensor) -> int:
    """Number of distinct values of an 8-bit-quantised image (bincount; same count as torch.unique)."""
    import torch

    idx = torch.round(q * 255.0).to(torch.int64).flatten()
    return int((torch.bincount(idx, minlength=256) > 0).sum())


def poisson_vals(n_distinct: int) -> float:
    """BasicSR's photon scale: the next power of two above the number of distinct values."""
    return float(2 ** math.ceil(math.log2(max(n_distinct, 1))))


def _poisson_cdf(width: int, lam: np.ndarray) -> np.ndarray:
    """P(X <= k) for k = 0..width-1 and each rate in ``lam`` (rows), float64: cumulative sums of the pmf
    ``exp(k log lam - lam - log k!)`` (within ~1e-13 of scipy.special.pdtr here; written out so that
    the noise module does not import scipy at start-up)."""
    k = np.arange(width, dtype=np.float64)
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, width, dtype=np.float64)))])
    lam = np.asarray(lam, dtype=np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        logpmf = np.where(lam > 0, k * np.log(np.where(lam > 0, lam, 1.0)) - lam - log_fact, np.where(k == 0, 0.0, -np.inf))
    return np.minimum(np.cumsum(np.exp(logpmf), axis=1), 1.0)


_GUIDE_BITS = 11  # 2048 buckets of u per level


@lru_cache(maxsize=16)
def _poisson_tables(vals: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Inverse-CDF tables for Poisson(level/255 * vals), level = 0..255: the CDFs (float64, flattened,
    row width W) and, per bucket m of u in [m/M, (m+1)/M), the smallest and largest possible sample packed
    as ``first | last << 16``; a bucket whose two agree needs no search (~97% of draws)."""
    m = 1 << _GUIDE_BITS
    lam = np.arange(256) / 255.0 * vals
    width = int(math.ceil(lam.max() + 12 * math.sqrt(lam.max()) + 16)) + 1
    cdf = _poisson_cdf(width, lam)
    cdf[:, -1] = 1.0  # the tail beyond 12 sigma (< 1e-30) goes to the last value
    lo_u = np.arange(m) / m
    hi_u = np.arange(1, m + 1) / m
    packed = np.empty((256, m), np.int32)
    for level in range(256):
        first = np.searchsorted(cdf[level], lo_u, side="right")
        last = np.minimum(np.searchsorted(cdf[level], hi_u, side="left"), width - 1)
        packed[level] = first | (last << 16)
    return np.ascontiguousarray(cdf).ravel(), packed.ravel(), width


def poisson_levels_cpu(levels: np.ndarray, vals: float, seed: int) -> np.ndarray:
    """Exact Poisson(level/255 * vals) draws for 8-bit levels by table inversion (several times faster
    than torch.poisson on the CPU, measured). ``vals`` must be a power of two <= 1024. The uniforms are
    32-bit integers u*2^32 from the sample's generator; the top bits pick the table bucket."""
    cdf, packed, width = _poisson_tables(float(vals))
    lv = levels.reshape(-1)
    n = lv.size
    raw = rng_from_seed(seed).bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n]
    idx = lv.astype(np.uint32)  # level << bits | top bits of u, in place (fewer passes over the image)
    idx <<= np.uint32(_GUIDE_BITS)
    idx |= raw >> np.uint32(32 - _GUIDE_BITS)
    p = np.take(packed, idx)
    j = p & 0xFFFF
    amb = np.flatnonzero((p >> 16) != j)
    if amb.size:
        # binary search for the first value whose CDF exceeds u, inside the bucket's [first, last]
        lo, hi, la = j[amb], p[amb] >> 16, lv[amb].astype(np.int64) * width
        ua = raw[amb] * (1.0 / 2**32)
        while True:
            act = np.flatnonzero(lo < hi)
            if not act.size:
                break
            mid = (lo[act] + hi[act]) // 2
            right = cdf[la[act] + mid] <= ua[act]
            lo[act] = np.where(right, mid + 1, lo[act])
            hi[act] = np.where(right, hi[act], mid)
        j[amb] = lo
    return j.reshape(levels.shape).astype(np.float32)


def _table_ok(vals: float) -> bool:
    return vals <= 1024 and float(vals).is_integer() and (int(vals) & (int(vals) - 1)) == 0


def _luma(x1: torch.Tensor) -> torch.Tensor:
    r, g, b = x1[:, 0:1], x1[:, 1:2], x1[:, 2:3]
    return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b


def poisson_noise_hwc(img: np.ndarray, scale: float, gray: bool, seed: int, vals: float | None = None,
                      clip: bool = True) -> tuple[np.ndarray, float]:
    """:func:`poisson_noise` of one H x W x C float32 image (numpy; what the CPU chain runs). Returns the
    image and the photon scale used. Powers of two up to 1024 (BasicSR's rule) draw by exact table
    inversion; other scales (BSRGAN's 10**U(2, 4)) with numpy's Poisson sampler."""
    src = img
    if gray and img.shape[2] == 3:
        src = cv2.transform(img, np.array([LUMA], dtype=np.float32)).reshape(img.shape[0], img.shape[1], 1)
    levels = cv2.convertScaleAbs(np.maximum(src, 0), alpha=255.0).reshape(src.shape)  # round half-even, clamp 255
    v = float(vals) if vals is not None else poisson_vals(int(np.count_nonzero(np.bincount(levels.ravel(), minlength=256))))
    q = np.divide(levels, np.float32(255.0), dtype=np.float32)
    if _table_ok(v):
        counts = poisson_levels_cpu(levels, v, seed)
    else:
        counts = rng_from_seed(seed).poisson(q.astype(np.float64) * v).astype(np.float32)
    counts /= np.float32(v)  # noise = scale * (counts / v - q), in place
    counts -= q
    counts *= np.float32(scale)
    out = img + counts
    if clip:
        np.clip(out, 0.0, 1.0, out=out)
    return out, v


def poisson_noise(
    x: torch.Tensor,
    scales: Sequence[float],
    grays: Sequence[bool],
    seeds: Sequence[int],
    vals: Sequence[float | None] | None = None,
    clip: bool = True,
) -> tuple[torch.Tensor, list[float]]:
    """Shot noise as Real-ESRGAN: quantise to 8 bit, ``Poisson(q*vals)/vals - q`` (on luma and broadcast
    when ``gray``), scaled by ``scales[b]`` and added to the input. ``vals[b]`` None means BasicSR's rule
    (next power of two above the number of distinct values). Returns the images and the vals used.
    CPU tensors: :func:`poisson_noise_hwc` per sample; other devices: ``torch.poisson`` there."""
    import torch

    from pairforge.degradations.filtering import from_hwc, to_hwc

    outs, used = [], []
    for b in range(x.shape[0]):
        xb = x[b : b + 1]
        v_given = vals[b] if vals is not None else None
        if x.device.type == "cpu":
            a, v = poisson_noise_hwc(to_hwc(xb[0]), scales[b], grays[b], seeds[b], v_given, clip)
            out = from_hwc(a)
        else:
            out, v = poisson_torch(xb, scales[b], grays[b], seeds[b], v_given, clip)
        outs.append(out)
        used.append(v)
    return (outs[0] if len(outs) == 1 else torch.cat(outs, 0)), used


def poisson_torch(xb, scale, gray, seed, v_given, clip) -> tuple[torch.Tensor, float]:
    """Shot noise of one sample with torch ops and torch.poisson (any device; what CUDA runs)."""
    import torch

    src = _luma(xb) if gray and xb.shape[1] == 3 else xb
    q = quantize8(src)
    v = float(v_given) if v_given is not None else poisson_vals(distinct_levels(q))
    g = torch_generator(seed, device=str(xb.device) if xb.device.type == "cuda" else "cpu")
    noise = torch.poisson(q * v, generator=g) / v - q
    out = xb + scale * noise
    return (torch.clamp(out, 0, 1) if clip else out), v
