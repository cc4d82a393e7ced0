"""The layer chain's supernet: every op of the vocabulary at every position.

Weights: one set per (position, op shape), where an op's shape is its kind, kernel and stride;
ops that differ only in width share it (``conv3-16`` is the first 16 filters of ``conv3-32``),
at the widest width the vocabulary needs, sliced to the width a path asks for (see
``nas_gym.spaces.supernet.layers``). The input width of a position is whatever the path produced
before it (or the data's channels), so the next layer slices its inputs to match. A residual
block's projection is used when its input and output widths differ, as in the stand-alone
block. Pooling and dropout have no weights. The head (global average pooling + linear) is one
linear layer sliced to the last width. So a path computes exactly the network
``build_model`` would build for that chain, with shared weights.

DARTS's relaxation (``forward_mixed``) needs every choice at a position to give one shape, so:
each op's output is zero-padded to the widest width, a downsampling op's output is brought back
to the position's input size by nearest-neighbour upsampling (the relaxed network keeps the
input's resolution all the way, like DARTS's normal cells), and one more choice, ``identity``,
passes the input through. ``derive`` reads depth from it: the chain is the argmax op of every
position whose argmax is not ``identity``, in order, each taken among the ops the space allows
after the chain derived so far (no pooling after pooling, no downsampling below size 2), and
``identity`` is refused where the chain could otherwise not reach ``min_depth``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_gym.spaces.base import SearchSpace
from nas_gym.spaces.layer_chain.chain import AVGPOOL, CONV, DROPOUT, MAXPOOL, RES, Chain, Op
from nas_gym.spaces.supernet.layers import PathBatchNorm, SlicedConvBN, avg_pool, max_pool, spatial_dims

IDENTITY = "identity"


def _shape_key(op: Op) -> str:
    """ModuleDict key of the weights an op uses (no dots: ``dropout0.2`` has no weights anyway)."""
    return f"{op.kind}{op.kernel}s{op.stride}"


class SlicedResBlock(nn.Module):
    """The stand-alone ``ResBlock`` with sliced weights; the projection only when widths differ."""

    def __init__(self, dims: int, max_in: int, max_out: int, kernel: int) -> None:
        super().__init__()
        self.conv1 = SlicedConvBN(dims, max_in, max_out, kernel)
        self.conv2 = SlicedConvBN(dims, max_out, max_out, kernel, relu=False)
        self.proj = SlicedConvBN(dims, max_in, max_out, 1, relu=False)

    def forward(self, x: torch.Tensor, c_out: int) -> torch.Tensor:
        skip = x if x.shape[1] == c_out else self.proj(x, c_out)
        return F.relu(self.conv2(self.conv1(x, c_out), c_out) + skip)


class LayerChainSupernet(nn.Module):
    """:param space: the chain space (vocabulary, depth limits).
    :param input_shape: one sample's ``(C, L)`` or ``(C, H, W)``.
    :param num_classes: logits of the head.
    """

    def __init__(self, space: SearchSpace, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.space, self.dims = space, spatial_dims(input_shape)
        self.c_in, self.num_classes = c_in, num_classes = input_shape[0], num_classes
        widths = [op.channels for op in space.ops if op.kind in (CONV, RES)]
        self.width = max([c_in, *widths])  # the widest tensor any path can carry
        max_out: dict[str, int] = {}
        for op in space.ops:
            if op.kind in (CONV, RES):
                max_out[_shape_key(op)] = max(max_out.get(_shape_key(op), 0), op.channels)
        self.layers = nn.ModuleList()
        for position in range(space.max_depth):
            widest_in = c_in if position == 0 else self.width
            modules = nn.ModuleDict()
            for op in space.ops:
                key = _shape_key(op)
                if op.kind == CONV and key not in modules:
                    modules[key] = SlicedConvBN(self.dims, widest_in, max_out[key], op.kernel, op.stride)
                elif op.kind == RES and key not in modules:
                    modules[key] = SlicedResBlock(self.dims, widest_in, max_out[key], op.kernel)
            self.layers.append(modules)
        self.head = nn.Linear(self.width, num_classes)
        self.norms = tuple(m for m in self.modules() if isinstance(m, PathBatchNorm))
        self.decisions = tuple(f"position {i}" for i in range(space.max_depth))
        self.choices = (*(op.text() for op in space.ops), IDENTITY)

    @property
    def decision_shape(self) -> tuple[int, int]:
        return len(self.decisions), len(self.choices)

    def _op(self, position: int, op: Op, x: torch.Tensor) -> torch.Tensor:
        if op.kind in (CONV, RES):
            return self.layers[position][_shape_key(op)](x, op.channels)
        if op.kind == MAXPOOL:
            return max_pool(x, self.dims)
        if op.kind == AVGPOOL:
            return avg_pool(x, self.dims)
        if op.kind == DROPOUT:
            return F.dropout(x, op.rate, self.training)
        raise ValueError(f"supernet does not know op kind {op.kind!r}")

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        features = x.flatten(2).mean(2)
        return F.linear(features, self.head.weight[:, : features.shape[1]], self.head.bias)

    def forward(self, x: torch.Tensor, arch: Chain) -> torch.Tensor:
        """The path of ``arch`` (validated by the space beforehand)."""
        for position, op in enumerate(arch.ops):
            x = self._op(position, op, x)
        return self._head(x)

    def forward_mixed(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """DARTS's relaxation: see the module docstring for how shapes are made to agree."""
        for position in range(self.space.max_depth):
            size = x.shape[2:]
            mixed = weights[position, -1] * F.pad(x, self._pad(x))
            for j, op in enumerate(self.space.ops):
                y = self._op(position, op, x)
                if y.shape[2:] != size:
                    y = F.interpolate(y, size=size, mode="nearest")
                mixed = mixed + weights[position, j] * F.pad(y, self._pad(y))
            x = mixed
        return self._head(x)

    def _pad(self, y: torch.Tensor) -> tuple[int, ...]:
        """``F.pad`` widths that zero-fill channels up to ``self.width``."""
        return (0, 0) * self.dims + (0, self.width - y.shape[1])

    def count_params(self, arch: Chain) -> int:
        """Trainable parameters of ``arch``'s stand-alone network, from the widths alone
        (building it would cost more than scoring it)."""
        c, total = self.c_in, 0
        for op in arch.ops:
            area = op.kernel**self.dims
            if op.kind == CONV:
                total += c * op.channels * area + 2 * op.channels
            elif op.kind == RES:
                total += (c + op.channels) * op.channels * area + 4 * op.channels
                total += (c * op.channels + 2 * op.channels) if c != op.channels else 0
            c = op.channels if op.kind in (CONV, RES) else c
        return total + (c + 1) * self.num_classes

    def derive(self, weights: np.ndarray) -> Chain:
        """The chain read from ``weights`` (rows: positions; columns: ops, then identity)."""
        space, ops = self.space, []
        for position in range(space.max_depth):
            allowed = list(space.mask(Chain(tuple(ops)))[: len(space.ops)])
            remaining = space.max_depth - position - 1
            allowed.append(len(ops) + remaining >= space.min_depth or not any(allowed))
            row = np.where(allowed, weights[position], -np.inf)
            choice = int(np.argmax(row))
            if choice < len(space.ops):
                ops.append(space.ops[choice])
        return Chain(tuple(ops))
