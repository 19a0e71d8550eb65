"""Exponential moving average of the generator's weights (the copy used for validation and restore)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float = 0.999, start_step: int = 0):
        self.decay = decay
        self.start_step = start_step
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Blend in the current weights (copy them outright before ``start_step``); buffers are copied."""
        d = 0.0 if step < self.start_step else self.decay
        ema_p = list(self.module.parameters())
        cur_p = list(model.parameters())
        if d == 0.0:
            torch._foreach_copy_(ema_p, [p.detach() for p in cur_p])
        else:
            torch._foreach_lerp_(ema_p, [p.detach() for p in cur_p], 1.0 - d)
        for eb, b in zip(self.module.buffers(), model.buffers()):
            eb.copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
