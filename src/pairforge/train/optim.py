"""AdamW with linear warmup and cosine decay to a floor (a LambdaLR, so it checkpoints as a state dict)."""
from __future__ import annotations

import math

import torch
from torch import nn

from pairforge.train.config import OptimConfig


def warmup_cosine(step: int, max_steps: int, warmup: int, floor: float) -> float:
    """LR multiplier at ``step``: linear 1/warmup..1, then cosine 1 -> ``floor`` at ``max_steps``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, max_steps - warmup)
    t = min(1.0, (step - warmup) / span)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))


def build_optimizer(params, cfg: OptimConfig, lr: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr or cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def build_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig, max_steps: int):
    w, f = cfg.warmup_steps, cfg.min_lr_ratio
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, max_steps, w, f))


def clip_gradients(model: nn.Module, max_norm: float | None) -> torch.Tensor:
    """Clip the global gradient norm; returns the norm before clipping (a tensor: no device sync)."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return torch.zeros(())
    if max_norm is None:
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])).detach()
    return torch.nn.utils.clip_grad_norm_(params, max_norm).detach()
