"""Per-sample 2D filtering with reflect padding, and unsharp masking (USM).

``filter2d`` is a correlation of every channel of sample ``b`` with kernel ``b`` after reflect padding
by ``k//2`` (BasicSR's ``filter2D``: grouped conv). On CUDA it runs as one grouped convolution for the
whole batch. On the CPU, torch's depthwise convolution is slow (measured here, one core, 512x512x3:
21x21 taps 25-90 ms, 51x51 130-340 ms; BasicSR's CPU throughput in bench/bench_degrade.py is bound by
it), so each sample goes through OpenCV instead: a sum of separable passes when the kernel has low
numerical rank (a Gaussian is rank 1; 21 taps ~1.7 ms), else a direct filter (small kernels) or a
real-DFT correlation, whichever the measured cost model says is cheaper.
Both paths use the same border rule (reflect without repeating the edge = ``BORDER_REFLECT_101``).

The numpy functions (``filter_hwc``, ``usm_hwc``) are what the CPU chain runs; this module imports torch
only inside the tensor functions, so the CPU path never loads it.
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # torch loads when a tensor is filtered (the CUDA path), not with this module
    import torch

#: A rank-r separable approximation is used only when the dropped part of the kernel is this small
#: (Frobenius norm, kernels sum to 1): the output moves by < 2e-5, far below one 8-bit step (0.0039).
RANK_TOLERANCE = 1e-6


def trim_kernel(k: np.ndarray) -> np.ndarray:
    """Drop all-zero outer rings (a size-k kernel zero-padded to 21 filters exactly like the size-k one)."""
    n = k.shape[0]
    r = 0
    while r < n // 2 and not k[r].any() and not k[n - 1 - r].any() and not k[:, r].any() and not k[:, n - 1 - r].any():
        r += 1
    return k[r : n - r, r : n - r] if r else k


# Cost model (ms at 512x512x3 float32, one core, best of 20 CPU-time runs on the 2-core benchmark machine,
# OpenCV 5.0). Only ratios matter; the choice must not depend on timing at run time (outputs differ by
# float rounding between routes, and a run's bytes must not depend on the machine's load).


def _sep_cost(k: int) -> float:
    """One cv2.sepFilter2D call with k taps (measured 0.63 / 0.94 / 1.21 / 1.65 ms at 7 / 11 / 15 / 21)."""
    return 0.25 + 0.068 * k


#: OpenCV switches filter2D to its own (slower) DFT for kernels of >= 130 taps; below that it filters directly
_DIRECT_MAX_AREA = 129
#: our real-DFT correlation (cv2.dft, packed spectra, optimal sizes): ~11.5 ms at 512x512x3 whatever the
#: kernel size (measured 11.1-11.8 ms for 7-21 taps; row bands of direct filters cost 12-36 ms for 15-21 taps)
_DFT_COST = 11.5


def _direct_cost(k: int) -> float:
    """Cheapest non-separable way: one direct filter2D below OpenCV's DFT threshold (measured 1.46 / 3.36
    ms at 7 / 11 taps), else a DFT."""
    if k * k <= _DIRECT_MAX_AREA:
        return 0.028 * k * k
    return _DFT_COST


def _filter_dft(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Correlation by real DFT per channel with reflect-101 padding (exact up to float32 rounding)."""
    n = k.shape[0]
    c = n // 2
    h, w, ch = img.shape
    pad = cv2.copyMakeBorder(img, c, c, c, c, cv2.BORDER_REFLECT_101).reshape(h + 2 * c, w + 2 * c, ch)
    ph, pw = pad.shape[:2]
    sh, sw = cv2.getOptimalDFTSize(ph + n - 1), cv2.getOptimalDFTSize(pw + n - 1)
    kk = np.zeros((sh, sw), np.float32)
    kk[:n, :n] = k[::-1, ::-1]  # correlation = convolution with the flipped kernel
    # (no nonzeroRows hints: with them OpenCV 5's DFT runs ~4x slower here, measured)
    kf = cv2.dft(kk)
    out = np.empty((h, w, ch), np.float32)
    buf = np.zeros((sh, sw), np.float32)
    for i in range(ch):
        buf[:ph, :pw] = pad[:, :, i]
        spec = cv2.mulSpectrums(cv2.dft(buf), kf, 0)
        full = cv2.idft(spec, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
        out[:, :, i] = full[n - 1 : n - 1 + h, n - 1 : n - 1 + w]
    return out


@lru_cache(maxsize=1024)
def _plan_cached(key: bytes, n: int) -> tuple | None:
    return _separable_plan(np.frombuffer(key, dtype=np.float64).reshape(n, n))


def _separable_plan(k: np.ndarray) -> tuple | None:
    """[(col_vector, row_vector), ...] whose outer products sum to ``k`` within RANK_TOLERANCE, when
    that many separable passes are cheaper than one direct/DFT filter; else None."""
    n = k.shape[0]
    u, s, vt = np.linalg.svd(k)
    tail = np.sqrt(np.cumsum((s**2)[::-1])[::-1])  # tail[r] = ||s[r:]||
    for r in range(1, n + 1):
        if r * _sep_cost(n) >= _direct_cost(n):
            return None
        if (tail[r] if r < n else 0.0) <= RANK_TOLERANCE:
            return tuple(
                ((u[:, i] * np.sqrt(s[i])).astype(np.float32), (vt[i] * np.sqrt(s[i])).astype(np.float32)) for i in range(r)
            )
    return None


def filter_hwc(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate an H x W x C float32 image with one kernel, reflect-101 borders.

    (Whole images: filtering wide images in column strips for cache locality was slower at every width
    from 512 to 2048 px with OpenCV 5.0 on the benchmark machine, measured: 1.7 vs 4.1 ms at 512, 7.7 vs
    10.0 ms at 2048 for 21 taps.)"""
    return _filter_hwc(img, np.asarray(kernel, dtype=np.float64))


def _filter_hwc(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate an H x W x C float32 image with one kernel (float64 or float32), reflect-101 borders.
    Picks the cheaper of summed separable passes (low-rank kernels) and a direct/DFT filter."""
    k = trim_kernel(np.asarray(kernel, dtype=np.float64))
    squeeze = img.ndim == 3 and img.shape[2] == 1
    if k.shape[0] == 1:
        out = img * np.float32(k[0, 0])
    else:
        plan = _plan_cached(np.ascontiguousarray(k).tobytes(), k.shape[0])
        border = cv2.BORDER_REFLECT_101
        big_enough = img.shape[0] > k.shape[0] and img.shape[1] > k.shape[0]
        if plan is None and k.shape[0] * k.shape[0] <= _DIRECT_MAX_AREA:
            out = cv2.filter2D(img, -1, k.astype(np.float32), borderType=border)
        elif plan is None and big_enough:
            out = _filter_dft(img, k.astype(np.float32))
        elif plan is None:
            out = cv2.filter2D(img, -1, k.astype(np.float32), borderType=border)
        else:
            out = None
            for col, row in plan:
                part = cv2.sepFilter2D(img, -1, row, col, borderType=border)
                out = part if out is None else cv2.add(out, part, dst=out)
    if squeeze and out.ndim == 2:
        out = out[:, :, None]
    return out


def to_hwc(x: torch.Tensor) -> np.ndarray:
    """A (C, H, W) CPU tensor as an H x W x C numpy array (no copy for channels-last storage; any copy is
    numpy's, single-threaded: torch's parallel copies are slow on a loaded machine)."""
    a = x.detach().permute(1, 2, 0).numpy()
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def from_hwc(a: np.ndarray) -> torch.Tensor:
    """An H x W x C array as a (1, C, H, W) tensor in channels-last storage (no copy)."""
    import torch

    if a.ndim == 2:
        a = a[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).unsqueeze(0)


def _pad_mode(h: int, w: int, p: int) -> str:
    # torch's reflect padding needs pad < size; tiny images fall back to edge replication
    return "reflect" if p < h and p < w else "replicate"


def filter2d_torch(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Grouped-convolution filter2d: ``x`` (B, C, H, W), ``kernels`` (B, k, k) or (1, k, k), k odd."""
    import torch.nn.functional as F

    b, c, h, w = x.shape
    k = kernels.shape[-1]
    if k % 2 != 1:
        raise ValueError(f"kernel size must be odd, got {k}")
    p = k // 2
    xp = F.pad(x, (p, p, p, p), mode=_pad_mode(h, w, p)).contiguous()
    kernels = kernels.to(dtype=x.dtype, device=x.device)
    if kernels.shape[0] == 1:
        return F.conv2d(xp.view(b * c, 1, h + 2 * p, w + 2 * p), kernels.view(1, 1, k, k)).view(b, c, h, w)
    weight = kernels.view(b, 1, k, k).repeat(1, c, 1, 1).view(b * c, 1, k, k)
    return F.conv2d(xp.view(1, b * c, h + 2 * p, w + 2 * p), weight, groups=b * c).view(b, c, h, w)


def filter2d(x: torch.Tensor, kernels: list[np.ndarray] | np.ndarray) -> torch.Tensor:
    """Filter sample ``b`` of ``x`` (B, C, H, W) with ``kernels[b]`` (each odd-sized, any size).

    CPU: OpenCV per sample (separable when possible). Other devices: one grouped conv per kernel size.
    """
    import torch

    if isinstance(kernels, np.ndarray) and kernels.ndim == 2:
        kernels = [kernels] * x.shape[0]
    if len(kernels) != x.shape[0]:
        raise ValueError(f"{len(kernels)} kernels for a batch of {x.shape[0]}")
    if x.device.type == "cpu":
        outs = [from_hwc(filter_hwc(to_hwc(x[i]), kernels[i])) for i in range(x.shape[0])]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 0)
    size = max(trim_kernel(np.asarray(k, dtype=np.float64)).shape[0] for k in kernels)
    stack = np.stack([_pad_to(trim_kernel(np.asarray(k, dtype=np.float64)), size) for k in kernels])
    return filter2d_torch(x, torch.from_numpy(stack).float())


def _pad_to(k: np.ndarray, size: int) -> np.ndarray:
    p = (size - k.shape[0]) // 2
    return np.pad(k, ((p, p), (p, p))) if p else k


@lru_cache(maxsize=8)
def usm_gaussian_1d(radius: int) -> np.ndarray:
    """OpenCV's default Gaussian for an odd size (sigma = 0.3*((k-1)/2 - 1) + 0.8), as BasicSR's USM."""
    if radius % 2 == 0:
        radius += 1
    return cv2.getGaussianKernel(radius, 0).astype(np.float64).ravel()


def usm_hwc(img: np.ndarray, g: np.ndarray, weight: float, threshold: float) -> np.ndarray:
    """USM of one H x W x 3 float32 image with OpenCV kernels (separable blur, vectorised arithmetic).

    Filtering 8-bit input into float32 output is ~30% cheaper than float32 input (measured), so the
    binary mask is blurred as uint8, and so is the image when it is exactly an 8-bit image / 255 (the
    usual case: USM runs first, on the HQ). Both are exact up to float32 rounding."""
    border = cv2.BORDER_REFLECT_101
    g255 = g / np.float32(255.0)
    u8 = cv2.convertScaleAbs(img, alpha=255.0)
    if img.min() >= 0 and np.array_equal(np.divide(u8, np.float32(255.0), dtype=np.float32), img):
        blur = cv2.sepFilter2D(u8, cv2.CV_32F, g255, g, borderType=border)
    else:
        blur = cv2.sepFilter2D(img, -1, g, g, borderType=border)
    if blur.ndim == 2:
        blur = blur[:, :, None]
    # |img - blur| * 255 > threshold  <=>  |img - blur| > threshold / 255; mask as 0/255 bytes
    mask = cv2.compare(cv2.absdiff(img, blur).reshape(img.shape), float(threshold) / 255.0, cv2.CMP_GT)
    soft = cv2.sepFilter2D(mask, cv2.CV_32F, g255, g, borderType=border)
    soft = soft.reshape(img.shape)
    sharp = cv2.addWeighted(img, 1.0 + weight, blur, -weight, 0.0).reshape(img.shape)  # img + w*(img - blur)
    np.clip(sharp, 0.0, 1.0, out=sharp)
    out = cv2.subtract(sharp, img, dst=sharp)  # soft*sharp + (1-soft)*img == img + soft*(sharp - img)
    out = cv2.multiply(out, soft, dst=out)
    out = cv2.add(out, img, dst=out)
    return out.reshape(img.shape)


def _sep_blur_torch(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    b, c, h, w = x.shape
    k = g.numel()
    p = k // 2
    xp = F.pad(x, (p, p, p, p), mode=_pad_mode(h, w, p)).reshape(b * c, 1, h + 2 * p, w + 2 * p)
    y = F.conv2d(xp, g.view(1, 1, 1, k))
    y = F.conv2d(y, g.view(1, 1, k, 1))
    return y.view(b, c, h, w)


def usm_sharpen(x: torch.Tensor, weight: float = 0.5, radius: int = 50, threshold: float = 10.0) -> torch.Tensor:
    """Unsharp masking of (B, C, H, W) images in [0, 1] (threshold in 0-255 units), as Real-ESRGAN
    sharpens its ground truth: ``soft*clip(x + w*(x - blur(x))) + (1 - soft)*x`` with
    ``soft = blur(|x - blur(x)|*255 > threshold)``. The Gaussian is separable, so it runs as two 1D passes."""
    g = usm_gaussian_1d(radius)
    if x.device.type == "cpu":
        import torch

        outs = [from_hwc(usm_hwc(to_hwc(x[i]), g.astype(np.float32), weight, threshold)) for i in range(x.shape[0])]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 0)
    return usm_sharpen_torch(x, weight, radius, threshold)


def usm_sharpen_torch(x: torch.Tensor, weight: float = 0.5, radius: int = 50, threshold: float = 10.0) -> torch.Tensor:
    """The batched torch USM (any device; what CUDA runs): two separable grouped-conv passes per blur."""
    import torch

    g = usm_gaussian_1d(radius)
    gt = torch.from_numpy(g).to(device=x.device, dtype=x.dtype)
    blur = _sep_blur_torch(x, gt)
    residual = x - blur
    mask = (residual.abs() * 255 > threshold).to(x.dtype)
    soft = _sep_blur_torch(mask, gt)
    sharp = torch.clamp(x + weight * residual, 0, 1)
    return soft * sharp + (1 - soft) * x


def usm_np(img: np.ndarray, weight: float = 0.5, radius: int = 50, threshold: float = 10.0) -> np.ndarray:
    """:func:`usm_sharpen` of one H x W x C float32 image (the CPU chain's USM; no torch)."""
    return usm_hwc(np.ascontiguousarray(img, dtype=np.float32), usm_gaussian_1d(radius).astype(np.float32), weight, threshold)
