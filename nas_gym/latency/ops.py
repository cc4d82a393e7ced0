"""The two modules a cell's latency needs beyond the layers its builder makes: a node's sum and
an empty cell's zeros, timed as table entries of their own (``nas_gym.latency.layers``)."""

from __future__ import annotations

import torch
from torch import nn


class Add(nn.Module):
    """A node's sum of two inputs (the cell's ``nodes[dst] + term``); the second is a buffer."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("other", torch.ones((1, *shape)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.other


class Zeros(nn.Module):
    """What a cell with no path from input to output computes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)
