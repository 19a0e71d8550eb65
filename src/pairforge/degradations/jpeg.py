"""JPEG compression: a real encoder (libjpeg-turbo through OpenCV) and a DiffJPEG-compatible model.

The real encoder is the default: it is fast and its artifacts (integer quantisation tables clamped to
1..255, rounding, 4:2:0 chroma with proper filtering) are what photos in the wild went through. Its
input is the image rounded to 8 bit and its quality an integer.

``diffjpeg`` reproduces the float model Real-ESRGAN trains with (BasicSR's ``DiffJPEG``, non-differentiable
rounding) for parity experiments, written here from its description: zero padding to a multiple of 16,
JPEG YCbCr, chroma 2x2 average pooling, 8x8 orthonormal DCT, division by the standard tables scaled by
``5000/q/100`` (q < 50) or ``(200 - 2q)/100`` without integer rounding or clamping, round, multiply back,
inverse DCT, nearest chroma upsampling, clamp to [0, 255]. Upstream's luma/chroma tables are used in
transposed orientation (its quirk, kept so that results match), and the output is not rounded to 8 bit.

Both exist as numpy functions for one H x W x 3 image (:func:`jpeg_hwc`, :func:`diffjpeg_hwc`: what the
CPU chain runs, no torch) and as tensor functions for batches (the DiffJPEG model batched on CUDA).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

from pairforge.degradations.filtering import from_hwc, to_hwc

if TYPE_CHECKING:  # torch loads for tensors (the CUDA path), not with this module
    import torch

# ITU T.81 Annex K tables, row = vertical frequency.
_LUMA_TABLE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.float32,
)
_CHROMA_TABLE = np.full((8, 8), 99, dtype=np.float32)
_CHROMA_TABLE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]

_RGB2YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float32)
_YCC2RGB = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]], dtype=np.float32)


def decode_jpeg_rgb(data: bytes | np.ndarray) -> np.ndarray:
    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray)) else data
    if _IMREAD_RGB is not None:
        return cv2.imdecode(buf, _IMREAD_RGB)
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)


def jpeg_hwc(a: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of one H x W x 3 float32 RGB image in [0, 1]: round to 8 bit (half to even, like
    torch.round), encode, decode, back to float32."""
    u8 = cv2.convertScaleAbs(np.maximum(a, 0), alpha=255.0)  # clamp(round(x*255), 0, 255), half to even
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(u8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return np.divide(decode_jpeg_rgb(buf), np.float32(255.0), dtype=np.float32)


def jpeg_libjpeg(x: torch.Tensor, qualities: Sequence[int]) -> torch.Tensor:
    """Compress/decompress each sample of (B, 3, H, W) in [0, 1] with a real encoder at integer quality."""
    import torch

    outs = []
    for b in range(x.shape[0]):
        a = to_hwc(x[b].detach().float().cpu())
        outs.append(from_hwc(jpeg_hwc(a, int(qualities[b]))).to(x.device))
    return outs[0] if len(outs) == 1 else torch.cat(outs, 0)


def quality_to_factor(quality: float) -> float:
    """IJG quality scaling as a float factor (no rounding): 50/q for q < 50, 2 - q/50 otherwise."""
    q = 5000.0 / quality if quality < 50 else 200.0 - quality * 2
    return q / 100.0


@lru_cache(maxsize=1)
def _dct_np() -> np.ndarray:
    """The orthonormal 8-point DCT-II matrix (row = frequency), float32."""
    d = np.zeros((8, 8), dtype=np.float64)
    for u in range(8):
        a = math.sqrt(0.5) if u == 0 else 1.0
        for x in range(8):
            d[u, x] = 0.5 * a * math.cos((2 * x + 1) * u * math.pi / 16)
    return d.astype(np.float32)


@lru_cache(maxsize=8)
def _dct_matrix(device: str) -> torch.Tensor:
    import torch

    return torch.from_numpy(_dct_np()).to(device)


def _jpeg_component_np(c: np.ndarray, table: np.ndarray, factor: float) -> np.ndarray:
    """DCT, quantise (round(coef / q) * q), inverse DCT of one plane whose sides are multiples of 8."""
    h, w = c.shape
    d = _dct_np()
    blocks = c.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3) - np.float32(128.0)
    coef = d @ blocks @ d.T
    q = table * np.float32(factor)
    coef = np.round(coef / q) * q
    return (d.T @ coef @ d).transpose(0, 2, 1, 3).reshape(h, w) + np.float32(128.0)


def diffjpeg_hwc(a: np.ndarray, quality: float) -> np.ndarray:
    """:func:`diffjpeg` of one H x W x 3 float32 image in [0, 1] at a float quality (numpy; the CPU chain)."""
    h, w = a.shape[:2]
    f = quality_to_factor(float(quality))
    x = np.zeros((h + (-h) % 16, w + (-w) % 16, 3), np.float32)
    np.clip(a, 0.0, 1.0, out=x[:h, :w])
    x *= np.float32(255.0)
    ycc = x @ _RGB2YCC.T
    ycc[..., 1:] += np.float32(128.0)
    ph, pw = ycc.shape[:2]
    cbcr = ycc[..., 1:].reshape(ph // 2, 2, pw // 2, 2, 2).mean(axis=(1, 3), dtype=np.float32)
    y = _jpeg_component_np(np.ascontiguousarray(ycc[..., 0]), _LUMA_TABLE.T, f)
    up = lambda c: np.repeat(np.repeat(c, 2, axis=0), 2, axis=1)
    cb = up(_jpeg_component_np(np.ascontiguousarray(cbcr[..., 0]), _CHROMA_TABLE.T, f))
    cr = up(_jpeg_component_np(np.ascontiguousarray(cbcr[..., 1]), _CHROMA_TABLE.T, f))
    rgb = np.stack([y, cb - np.float32(128.0), cr - np.float32(128.0)], axis=-1) @ _YCC2RGB.T
    np.clip(rgb, 0.0, 255.0, out=rgb)
    return np.ascontiguousarray(rgb[:h, :w]) / np.float32(255.0)


def _blocks(c: torch.Tensor) -> torch.Tensor:
    b, h, w = c.shape
    return c.view(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)  # (B, H/8, W/8, 8, 8)


def _unblocks(c: torch.Tensor) -> torch.Tensor:
    b, nh, nw, _, _ = c.shape
    return c.permute(0, 1, 3, 2, 4).reshape(b, nh * 8, nw * 8)


def _jpeg_component(c: torch.Tensor, table: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    import torch

    d = _dct_matrix(str(c.device))
    blocks = _blocks(c) - 128.0
    coef = d @ blocks @ d.T
    q = table * factors.view(-1, 1, 1, 1, 1)
    coef = torch.round(coef / q) * q
    return _unblocks(d.T @ coef @ d) + 128.0


def diffjpeg(x: torch.Tensor, qualities: Sequence[float]) -> torch.Tensor:
    """DiffJPEG-compatible float JPEG model of (B, 3, H, W) in [0, 1] with per-sample float qualities
    (CPU tensors: :func:`diffjpeg_hwc` per sample; other devices: :func:`diffjpeg_torch`, batched)."""
    import torch

    if x.device.type == "cpu":
        outs = [from_hwc(diffjpeg_hwc(to_hwc(x[i].float()), float(q))) for i, q in enumerate(qualities)]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 0)
    return diffjpeg_torch(x, qualities)


def diffjpeg_torch(x: torch.Tensor, qualities: Sequence[float]) -> torch.Tensor:
    """The DiffJPEG model batched with torch ops (any device; what CUDA runs)."""
    import torch
    import torch.nn.functional as F

    _, _, h, w = x.shape
    factors = torch.tensor([quality_to_factor(float(q)) for q in qualities], dtype=torch.float32, device=x.device)
    ph, pw = (-h) % 16, (-w) % 16
    xp = F.pad(torch.clamp(x.float(), 0, 1), (0, pw, 0, ph), mode="constant", value=0.0) * 255.0
    m = torch.from_numpy(_RGB2YCC).to(x.device)
    ycc = torch.einsum("bchw,dc->bdhw", xp, m) + torch.tensor([0.0, 128.0, 128.0], device=x.device).view(1, 3, 1, 1)
    y = ycc[:, 0]
    cbcr = F.avg_pool2d(ycc[:, 1:], kernel_size=2, stride=2)
    # upstream's tables are stored transposed relative to the standard's orientation
    ty = torch.from_numpy(_LUMA_TABLE.T.copy()).to(x.device)
    tc = torch.from_numpy(_CHROMA_TABLE.T.copy()).to(x.device)
    y = _jpeg_component(y, ty, factors)
    cb = _jpeg_component(cbcr[:, 0], tc, factors)
    cr = _jpeg_component(cbcr[:, 1], tc, factors)
    up = lambda c: c.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    ycc = torch.stack([y, up(cb), up(cr)], dim=1) - torch.tensor([0.0, 128.0, 128.0], device=x.device).view(1, 3, 1, 1)
    rgb = torch.einsum("bchw,dc->bdhw", ycc, torch.from_numpy(_YCC2RGB).to(x.device))
    return torch.clamp(rgb, 0, 255)[:, :, :h, :w] / 255.0
