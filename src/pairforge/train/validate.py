"""Periodic validation on held-out pairs: PSNR/SSIM (LPIPS when available) against the baseline of
doing nothing (identity, or bicubic upsampling for SR), and an image grid PNG (baseline | output | HQ)."""
from __future__ import annotations

import contextlib
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from pairforge.train.data import ValPair
from pairforge.train.metrics import psnr, ssim


def baseline(lq: np.ndarray, hq_shape: tuple[int, ...]) -> np.ndarray:
    """What a model that does nothing delivers: the LQ itself, or its bicubic upsampling."""
    if lq.shape[:2] == hq_shape[:2]:
        return lq
    return cv2.resize(lq, (hq_shape[1], hq_shape[0]), interpolation=cv2.INTER_CUBIC)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """NCHW/CHW float in [0, 1] -> HWC uint8 (first image)."""
    if t.ndim == 4:
        t = t[0]
    return (t.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy())


@torch.no_grad()
def run_model(model: nn.Module, lq: np.ndarray, device: torch.device, amp_dtype=None) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(lq)).permute(2, 0, 1)[None].float().div(255).to(device)
    ctx = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
    with ctx:
        y = model(x)
    return to_uint8(y)


def image_grid(rows: list[list[np.ndarray]], height: int = 160, gap: int = 4) -> np.ndarray:
    """Rows of panels resized to a common height, padded to a common width (uint8 RGB)."""
    lines = []
    for panels in rows:
        resized = [cv2.resize(p, (max(1, round(p.shape[1] * height / p.shape[0])), height),
                              interpolation=cv2.INTER_NEAREST if p.shape[0] < height else cv2.INTER_AREA)
                   for p in panels]
        sep = np.full((height, gap, 3), 255, np.uint8)
        line = resized[0]
        for r in resized[1:]:
            line = np.concatenate([line, sep, r], axis=1)
        lines.append(line)
    width = max(line.shape[1] for line in lines)
    out = [np.pad(line, ((0, gap), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    return np.concatenate(out, axis=0)[:-gap]


def validate(model: nn.Module, pairs: list[ValPair], device: torch.device, *, amp_dtype=None,
             lpips_model: nn.Module | None = None, grid_path: Path | None = None, grid_rows: int = 4) -> dict:
    """Mean metrics of ``model`` and of the baseline over ``pairs``; writes the grid PNG if asked."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    rows = []
    try:
        for i, p in enumerate(pairs):
            out = run_model(model, p.lq, device, amp_dtype)
            if out.shape != p.hq.shape:
                raise ValueError(f"model output {out.shape} does not match HQ {p.hq.shape} for {p.key}")
            base = baseline(p.lq, p.hq.shape)
            vals = {"psnr": psnr(out, p.hq), "ssim": ssim(out, p.hq),
                    "psnr_baseline": psnr(base, p.hq), "ssim_baseline": ssim(base, p.hq)}
            if lpips_model is not None:
                def t(a):
                    return torch.from_numpy(a).permute(2, 0, 1)[None].float().div(255).to(device)
                with torch.no_grad():
                    vals["lpips"] = float(lpips_model(t(out), t(p.hq), normalize=True).mean())
                    vals["lpips_baseline"] = float(lpips_model(t(base), t(p.hq), normalize=True).mean())
            for k, v in vals.items():
                sums[k] = sums.get(k, 0.0) + v
            if i < grid_rows:
                rows.append([base, out, p.hq])
    finally:
        model.train(was_training)
    result = {k: v / len(pairs) for k, v in sums.items()}
    result["samples"] = len(pairs)
    if grid_path is not None and rows:
        grid_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(grid_path), cv2.cvtColor(image_grid(rows), cv2.COLOR_RGB2BGR))
    return result
