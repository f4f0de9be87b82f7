"""Exponential moving average of the generator's weights (used for samples and metrics)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """shadow = decay * shadow + (1 - decay) * weights, after every generator step; buffers copied."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for shadow, weight in zip(self.model.parameters(), model.parameters(), strict=True):
            shadow.lerp_(weight.detach(), 1.0 - self.decay)
        for shadow, buffer in zip(self.model.buffers(), model.buffers(), strict=True):
            shadow.copy_(buffer)
