"""The layer chain's model builder: a Chain to a torch module, and its parameter and MAC counts.

The same chain builds a Conv1d network for sequences (input ``(C, L)``) or a Conv2d network for
images (input ``(C, H, W)``): the search space only talks about "spatial size", so one builder
serves both, and nothing here picks a device (the trainer moves the model).

Every network ends in the fixed MetaQNN-style head, global average pooling + linear, so any
chain (even one that never changes the channel count) maps to ``num_classes`` logits and the
head's cost is the same function of the last channel count for every architecture.
"""

from __future__ import annotations

import torch
from torch import nn

from nas_gym.spaces.layer_chain.chain import AVGPOOL, CONV, DROPOUT, MAXPOOL, RES, Chain, Op

_LAYERS = {
    1: (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d),
    2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d),
}


def _spatial_dims(input_shape: tuple[int, ...]) -> int:
    if len(input_shape) not in (2, 3):
        raise ValueError(f"input_shape must be (C, L) or (C, H, W), got {tuple(input_shape)}")
    return len(input_shape) - 1


class ConvBN(nn.Sequential):
    """conv (no bias: batch norm's shift makes it redundant) + batch norm, optionally ReLU."""

    def __init__(self, dims: int, c_in: int, c_out: int, kernel: int, stride: int = 1, relu: bool = True) -> None:
        conv, bn = _LAYERS[dims][0], _LAYERS[dims][1]
        layers: list[nn.Module] = [conv(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False), bn(c_out)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus a skip, then ReLU (ResNet's basic block, stride 1).

    The skip is the identity when the channel count is kept, else a 1x1 conv + BN projection,
    so a block can widen the network without a separate conv op in front of it.
    """

    def __init__(self, dims: int, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBN(dims, c_in, c_out, kernel), ConvBN(dims, c_out, c_out, kernel, relu=False))
        self.skip = nn.Identity() if c_in == c_out else ConvBN(dims, c_in, c_out, 1, relu=False)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


def _op_module(op: Op, dims: int, c_in: int) -> tuple[nn.Module, int]:
    """The module for one op and the channel count it outputs."""
    _, _, maxpool, avgpool, _ = _LAYERS[dims]
    if op.kind == CONV:
        return ConvBN(dims, c_in, op.channels, op.kernel, op.stride), op.channels
    if op.kind == RES:
        return ResBlock(dims, c_in, op.channels, op.kernel), op.channels
    if op.kind == MAXPOOL:
        return maxpool(2, 2), c_in
    if op.kind == AVGPOOL:
        return avgpool(2, 2), c_in
    if op.kind == DROPOUT:
        return nn.Dropout(op.rate), c_in
    raise ValueError(f"builder does not know op kind {op.kind!r}")


def build_model(arch: Chain, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A ``nn.Sequential`` of the chain's ops, then global average pooling, flatten and linear.

    :param arch: the chain (validated by the search space; the builder only checks it can build).
    :param input_shape: one sample's shape without the batch: ``(C, L)`` or ``(C, H, W)``.
    :param num_classes: logits of the linear head.
    :raises ValueError: if an op would shrink the spatial size below 1.
    """
    dims = _spatial_dims(input_shape)
    channels, sizes = input_shape[0], list(input_shape[1:])
    layers: list[nn.Module] = []
    for i, op in enumerate(arch.ops):
        sizes = [op.out_size(s) for s in sizes]
        if min(sizes) < 1:
            raise ValueError(f"op {i} ({op}) shrinks the spatial size of input {tuple(input_shape)} below 1")
        module, channels = _op_module(op, dims, channels)
        layers.append(module)
    layers += [_LAYERS[dims][4](1), nn.Flatten(1), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)
