"""The cell space's network: a fixed skeleton around copies of one searched cell.

Skeleton (NAS-Bench-201's, with sizes from the preset): a stem conv-BN, then ``stages`` stages
of ``cells_per_stage`` cells, a residual reduction block (stride 2, channels doubled) between
two stages, then BN-ReLU, global average pooling and a linear head. Works for 1-D signals
``(C, L)`` and images ``(C, H, W)`` alike.

The builder takes the canonical cell (``nas_gym.spaces.cell.space.canonical``): edges that no path
from input to output uses are not built, so every cell of one key builds the same network with
the same initial weights.
"""

from __future__ import annotations

import torch
from torch import nn

from nas_gym.spaces.cell.arch import CELL_OPS, EDGES, N_NODES, NONE, Cell

_LAYERS = {1: (nn.Conv1d, nn.BatchNorm1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d),
           2: (nn.Conv2d, nn.BatchNorm2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)}


def _relu_conv_bn(dims: int, c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    conv, bn, _, _ = _LAYERS[dims]
    return nn.Sequential(nn.ReLU(inplace=False), conv(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
                         bn(c_out))


def _edge_op(name: str, dims: int, channels: int) -> nn.Module:
    if name == "skip":
        return nn.Identity()
    if name == "conv1":
        return _relu_conv_bn(dims, channels, channels, 1)
    if name == "conv3":
        return _relu_conv_bn(dims, channels, channels, 3)
    if name == "avgpool3":
        return _LAYERS[dims][2](3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"cell op {name!r} has no module")


class CellModule(nn.Module):
    """One cell: node i = sum of op(node j) over its live incoming edges; returns node 3 (zeros
    when no path joins input and output, as a ``none``-only cell computes).

    ``names`` (the op of each built edge) and ``channels`` let the trainer stack cells that
    differ (``nas_gym.training.grouped_cell``) without reading the op off the modules.
    """

    def __init__(self, cell: Cell, dims: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.edges = [(src, dst) for (src, dst), op in zip(EDGES, cell.ops, strict=True) if op != NONE]
        self.names = [CELL_OPS[op] for op in cell.ops if op != NONE]
        self.ops = nn.ModuleList(_edge_op(CELL_OPS[op], dims, channels) for op in cell.ops if op != NONE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x] + [None] * (N_NODES - 1)
        for (src, dst), op in zip(self.edges, self.ops, strict=True):
            term = op(nodes[src])
            nodes[dst] = term if nodes[dst] is None else nodes[dst] + term
        out = nodes[-1]
        return torch.zeros_like(x) if out is None else out


class ReductionBlock(nn.Module):
    """ResNet's basic block with stride 2: two ReLU-conv-BN, and a shortcut of 2-average pooling
    then a 1x1 conv (NAS-Bench-201's reduction between stages)."""

    def __init__(self, dims: int, c_in: int, c_out: int) -> None:
        super().__init__()
        conv, _, avgpool, _ = _LAYERS[dims]
        self.body = nn.Sequential(_relu_conv_bn(dims, c_in, c_out, 3, stride=2), _relu_conv_bn(dims, c_out, c_out, 3))
        self.shortcut = nn.Sequential(avgpool(2, stride=2, ceil_mode=True), conv(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


def build_cell_network(cell: Cell, input_shape: tuple[int, ...], num_classes: int, channels: int, stages: int,
                       cells_per_stage: int) -> nn.Module:
    """The whole network for one sample shape ``(C, L)`` or ``(C, H, W)``."""
    dims = len(input_shape) - 1
    if dims not in _LAYERS:
        raise ValueError(f"input_shape must be (C, L) or (C, H, W), got {tuple(input_shape)}")
    conv, bn, _, gap = _LAYERS[dims]
    layers: list[nn.Module] = [conv(input_shape[0], channels, 3, padding=1, bias=False), bn(channels)]
    c = channels
    for stage in range(stages):
        if stage:
            layers.append(ReductionBlock(dims, c, 2 * c))
            c *= 2
        layers.extend(CellModule(cell, dims, c) for _ in range(cells_per_stage))
    layers += [bn(c), nn.ReLU(inplace=True), gap(1), nn.Flatten(1), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


class Add(nn.Module):
    """A node's sum of two inputs (the cell's ``nodes[dst] + term``), the second a buffer: timed as
    a latency table entry of its own (``nas_gym.spaces.cell.latency``)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("other", torch.ones((1, *shape)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.other


class Zeros(nn.Module):
    """What a cell with no path from input to output computes (a latency table entry too)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)
