"""The cell space's supernet: the fixed skeleton, with every op on every edge of every cell.

Each copy of the cell (``stages x cells_per_stage`` of them) has its own weights for the two
ops that have any (``conv1``, ``conv3``: ReLU-conv-BN), as in NAS-Bench-201's weight-sharing
baselines; ``skip``, ``avgpool3`` and ``none`` have none. Stem, reductions and head are shared
by every path. A path is a cell: in its canonical form (``nas_gym.spaces.cell.space.canonical``),
so edges that no input-to-output path uses are not run, exactly as the stand-alone builder
leaves them out.

DARTS's relaxation needs no reshaping here: every op keeps the node's shape, so node i is the
sum over incoming edges of the softmax-weighted sum of the 5 ops (``none`` contributing zero).
``derive`` takes the argmax of each edge over all 5 ops, ``none`` included, as NAS-Bench-201's
DARTS baselines do (original DARTS drops ``none`` from the argmax; here it can cut edges).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_gym.spaces.base import SearchSpace
from nas_gym.spaces.cell.arch import CELL_OPS, EDGES, N_NODES, NONE, Cell, canonical
from nas_gym.spaces.supernet.layers import PathBatchNorm, SlicedConvBN, box3, spatial_dims

_WEIGHTED = {"conv1": 1, "conv3": 3}  # op name -> kernel


class _Reduction(nn.Module):
    """The skeleton's residual reduction block (stride 2), with path batch norm."""

    def __init__(self, dims: int, c_in: int, c_out: int) -> None:
        super().__init__()
        self.dims, self.c_out = dims, c_out
        self.conv1 = SlicedConvBN(dims, c_in, c_out, 3, stride=2, relu=False)
        self.conv2 = SlicedConvBN(dims, c_out, c_out, 3, relu=False)
        self.shortcut = nn.Parameter(torch.empty(c_out, c_in, *([1] * dims)))
        nn.init.kaiming_uniform_(self.shortcut, a=5**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        body = self.conv2(F.relu(self.conv1(F.relu(x), self.c_out)), self.c_out)
        pool, conv = (F.avg_pool1d, F.conv1d) if self.dims == 1 else (F.avg_pool2d, F.conv2d)
        return body + conv(pool(x, 2, 2, ceil_mode=True), self.shortcut)


class _CellCopy(nn.Module):
    """One copy of the cell: per edge, a conv1 and a conv3 at this stage's width."""

    def __init__(self, dims: int, channels: int) -> None:
        super().__init__()
        self.dims, self.channels = dims, channels
        self.edges = nn.ModuleList(
            nn.ModuleDict({name: SlicedConvBN(dims, channels, channels, k, relu=False) for name, k in _WEIGHTED.items()})
            for _ in EDGES)

    def _op(self, edge: int, op: int, x: torch.Tensor) -> torch.Tensor:
        name = CELL_OPS[op]
        if name == "skip":
            return x
        if name == "avgpool3":
            return box3(x)
        return self.edges[edge][name](F.relu(x), self.channels)

    def forward(self, x: torch.Tensor, ops: tuple[int, ...]) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x] + [None] * (N_NODES - 1)
        for edge, ((src, dst), op) in enumerate(zip(EDGES, ops, strict=True)):
            if op == NONE or nodes[src] is None:
                continue
            term = self._op(edge, op, nodes[src])
            nodes[dst] = term if nodes[dst] is None else nodes[dst] + term
        return torch.zeros_like(x) if nodes[-1] is None else nodes[-1]

    def forward_mixed(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        nodes = [x] + [torch.zeros_like(x)] * (N_NODES - 1)
        for edge, (src, dst) in enumerate(EDGES):
            mixed = sum(weights[edge, op] * self._op(edge, op, nodes[src]) for op in range(len(CELL_OPS)) if op != NONE)
            nodes[dst] = nodes[dst] + mixed
        return nodes[-1]


class CellSupernet(nn.Module):
    """:param space: the cell space (its skeleton sizes).
    :param input_shape: one sample's ``(C, L)`` or ``(C, H, W)``.
    :param num_classes: logits of the head.
    """

    def __init__(self, space: SearchSpace, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.space, self.dims = space, spatial_dims(input_shape)
        self.c_in, self.num_classes = input_shape[0], num_classes
        c = space.channels
        self.stem = SlicedConvBN(self.dims, input_shape[0], c, 3, relu=False)
        self.blocks = nn.ModuleList()
        for stage in range(space.stages):
            if stage:
                self.blocks.append(_Reduction(self.dims, c, 2 * c))
                c *= 2
            self.blocks.extend(_CellCopy(self.dims, c) for _ in range(space.cells_per_stage))
        self.final_bn = PathBatchNorm(c)
        self.head = nn.Linear(c, num_classes)
        self.width = c
        self.norms = tuple(m for m in self.modules() if isinstance(m, PathBatchNorm))
        self.decisions = tuple(f"edge {src}->{dst}" for src, dst in EDGES)
        self.choices = CELL_OPS

    @property
    def decision_shape(self) -> tuple[int, int]:
        return len(EDGES), len(CELL_OPS)

    def _run(self, x: torch.Tensor, cell_fn) -> torch.Tensor:
        x = self.stem(x, self.space.channels)
        for block in self.blocks:
            x = cell_fn(block, x) if isinstance(block, _CellCopy) else block(x)
        return self.head(F.relu(self.final_bn(x)).flatten(2).mean(2))

    def forward(self, x: torch.Tensor, arch: Cell) -> torch.Tensor:
        ops = canonical(arch).ops
        return self._run(x, lambda block, h: block(h, ops))

    def forward_mixed(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self._run(x, lambda block, h: block.forward_mixed(h, weights))

    def count_params(self, arch: Cell) -> int:
        """Trainable parameters of ``arch``'s stand-alone network, from the sizes alone
        (building it would cost more than scoring it)."""
        k3 = 3**self.dims
        ops = canonical(arch).ops
        c = self.space.channels
        total = self.c_in * c * k3 + 2 * c
        for stage in range(self.space.stages):
            if stage:
                total += c * 2 * c * k3 + 2 * c * 2 * c * k3 + 8 * c + c * 2 * c
                c *= 2
            per_cell = sum(c * c * (k3 if CELL_OPS[op] == "conv3" else 1) + 2 * c for op in ops
                           if CELL_OPS[op] in _WEIGHTED)
            total += per_cell * self.space.cells_per_stage
        return total + 2 * c + (c + 1) * self.num_classes

    def derive(self, weights: np.ndarray) -> Cell:
        return Cell(tuple(int(np.argmax(row)) for row in weights))
