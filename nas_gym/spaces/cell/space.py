"""The cell space (NAS-Bench-201's shape): choose the op of each of a cell's 6 edges.

A cell is a DAG of 4 nodes; node 0 is the cell's input, node 3 its output, and every edge
j -> i (j < i) carries one of 5 ops: ``none`` (zero), ``skip``, ``conv1`` / ``conv3``
(ReLU-conv-BN, kernel 1 / 3) and ``avgpool3``. A node sums its incoming edges. The network is a
fixed skeleton (``nas_gym.spaces.cell.model``) that stacks copies of the one cell.

Text form, as NAS-Bench-201 writes it, one group per node listing each incoming edge's op and
source: ``|conv3~0|+|skip~0|conv1~1|+|none~0|conv3~1|avgpool3~2|``.

Canonical key: two cells that compute the same function with the same parameters share one key,
so the cache and the table store them once and the builder builds one network for both. Edges
that no path from input to output uses are dropped (NAS-Bench-201's pruning), ``skip`` is the
identity, sums are multisets and average pooling is linear (``nas_gym.spaces.cell.function``);
over the 5^6 = 15,625 cells this leaves 5,044 distinct networks (``tests/test_cell_function.py``
counts them and checks the merge against an interpreter of the cell).
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from nas_gym.spaces.base import ArchitectureError, SpaceParams

if TYPE_CHECKING:
    from torch import nn

    from nas_gym.spaces.supernet.base import Supernet

from nas_gym.spaces.cell.arch import CELL_OPS, EDGES, N_NODES, NONE, Cell, canonical, live_edges
from nas_gym.spaces.cell.latency import CellLayers

__all__ = ["CELL_OPS", "EDGES", "N_NODES", "NONE", "Cell", "CellParams", "CellSpace", "canonical", "live_edges"]


class CellParams(SpaceParams):
    """``space:`` of a cell preset: the fixed skeleton around the searched cell.

    :param channels: channels of the first stage; each later stage doubles them.
    :param stages: stages of cells, with a residual reduction block (stride 2) between two.
    :param cells_per_stage: copies of the cell per stage (NAS-Bench-201: 5).
    """

    kind: Literal["cell"] = "cell"
    channels: int = Field(default=16, ge=1, le=1024)
    stages: int = Field(default=3, ge=1, le=6)
    cells_per_stage: int = Field(default=1, ge=1, le=20)


@dataclass(frozen=True)
class CellSpace:
    """Episodes of exactly 6 steps, one per edge in ``EDGES`` order; every op is allowed on
    every edge, so the mask is all True and there is no stop action."""

    channels: int
    stages: int
    cells_per_stage: int
    input_shape: tuple[int, ...]

    kind = "cell"
    Params = CellParams
    n_actions = len(CELL_OPS)
    observation_size = len(EDGES) * len(CELL_OPS) + 1
    max_steps = len(EDGES)

    @classmethod
    def from_params(cls, params: CellParams, input_shape: tuple[int, ...]) -> CellSpace:
        if len(input_shape) not in (2, 3):
            raise ArchitectureError(f"cell space: input shape must be (C, L) or (C, H, W), got {tuple(input_shape)}")
        if min(input_shape[1:]) < 2 ** (params.stages - 1):
            raise ArchitectureError(f"cell space: {params.stages} stages halve inputs of size {min(input_shape[1:])} "
                                    "below 1; lower space.stages")
        return cls(params.channels, params.stages, params.cells_per_stage, tuple(input_shape))

    # -- episodes ------------------------------------------------------------------------------
    def empty(self) -> Cell:
        return Cell(())

    def step(self, partial: Cell, action: int) -> tuple[Cell, bool]:
        cell = Cell(partial.ops + (int(action),))
        return cell, cell.complete

    def mask(self, partial: Cell) -> np.ndarray:
        return np.ones(self.n_actions, dtype=bool)

    def observe(self, partial: Cell) -> np.ndarray:
        """One one-hot row per edge (zeros for edges not chosen yet), then the share chosen."""
        obs = np.zeros(self.observation_size, dtype=np.float32)
        for e, op in enumerate(partial.ops):
            obs[e * len(CELL_OPS) + op] = 1.0
        obs[-1] = len(partial.ops) / len(EDGES)
        return obs

    def actions_of(self, arch: Cell) -> list[int]:
        return list(arch.ops)

    def transition_key(self, partial: Cell) -> Hashable:
        return len(partial.ops)

    def describe(self, partial: Cell) -> str:
        return f"{partial.text()}  ({len(partial.ops)}/{len(EDGES)} edges)"

    def identity(self) -> dict[str, Any]:
        return {"channels": self.channels, "stages": self.stages, "cells_per_stage": self.cells_per_stage}

    # -- architectures -------------------------------------------------------------------------
    def parse(self, text: str) -> Cell:
        return Cell.parse(text)

    def violation(self, arch: Any) -> str | None:
        if not isinstance(arch, Cell):
            return f"{type(arch).__name__} is not a cell"
        if not arch.complete:
            return f"only {len(arch.ops)} of {len(EDGES)} edges chosen"
        return None

    def validate(self, arch: Cell | str) -> Cell:
        if isinstance(arch, str):
            arch = Cell.parse(arch)
        reason = self.violation(arch)
        if reason:
            raise ArchitectureError(f"architecture {arch.text() if isinstance(arch, Cell) else arch} is not in the search space: {reason}")
        return arch

    def sample(self, rng: np.random.Generator) -> Cell:
        """Uniform over the 15,625 cells (as NAS-Bench-201's random search samples)."""
        return Cell(tuple(int(o) for o in rng.integers(len(CELL_OPS), size=len(EDGES))))

    def neighbours(self, arch: Cell) -> list[Cell]:
        """The 24 cells that differ from ``arch`` in one edge's op."""
        return [Cell(arch.ops[:e] + (op,) + arch.ops[e + 1:]) for e in range(len(EDGES))
                for op in range(len(CELL_OPS)) if op != arch.ops[e]]

    def mutate(self, arch: Cell, rng: np.random.Generator) -> Cell:
        edge = int(rng.integers(len(EDGES)))
        op = int(rng.integers(len(CELL_OPS) - 1))
        op += op >= arch.ops[edge]  # any op but the current one, uniformly
        return Cell(arch.ops[:edge] + (op,) + arch.ops[edge + 1:])

    def size(self) -> int:
        return len(CELL_OPS) ** len(EDGES)

    def enumerate(self) -> Iterator[Cell]:
        return (Cell(ops) for ops in itertools.product(range(len(CELL_OPS)), repeat=len(EDGES)))

    def distinct(self) -> list[Cell]:
        """One representative (the canonical form) of every distinct network, in a fixed order."""
        return sorted({canonical(c) for c in self.enumerate()}, key=lambda c: c.ops)

    def features(self, arch: Cell) -> np.ndarray:
        """Per-edge one-hots of the canonical cell, then the count of each op on live edges."""
        canon = canonical(arch)
        counts = np.bincount(np.array(canon.ops), minlength=len(CELL_OPS)).astype(np.float32)
        return np.concatenate([self.observe(canon)[:-1], counts])

    # -- models ----------------------------------------------------------------------------------
    def build_model(self, arch: Cell, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        from nas_gym.spaces.cell.model import build_cell_network

        return build_cell_network(canonical(arch), input_shape, num_classes, self.channels, self.stages,
                                  self.cells_per_stage)

    def count_flops(self, arch: Cell, input_shape: tuple[int, ...], num_classes: int) -> int:
        from nas_gym.spaces.cell.flops import cell_network_flops

        return cell_network_flops(canonical(arch), input_shape, num_classes, self.channels, self.stages,
                                  self.cells_per_stage)

    def build_supernet(self, input_shape: tuple[int, ...], num_classes: int) -> Supernet:
        from nas_gym.spaces.cell.supernet import CellSupernet

        return CellSupernet(self, input_shape, num_classes)

    def latency_layers(self, input_shape: tuple[int, ...], num_classes: int) -> CellLayers:
        """The layers the latency model times (``nas_gym.spaces.capabilities.ProvidesLatencyLayers``)."""
        return CellLayers(self, input_shape, num_classes)
