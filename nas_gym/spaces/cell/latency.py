"""The cell network cut into the layers the latency table times
(``nas_gym.spaces.capabilities.LatencyLayers``): what ``CellSpace.latency_layers`` returns.

No torch at import time: ``keys`` reads the cell only; ``build`` has the space build a model.
The space is typed ``Any``: this module is imported by ``nas_gym.spaces.cell.space``, never the other
way round.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from nas_gym.spaces.capabilities import Shape, key_shape, layer_key
from nas_gym.spaces.cell.arch import CELL_OPS, EDGES, NONE, Cell, canonical

if TYPE_CHECKING:
    from torch import nn


class CellLayers:
    """A cell network: the fixed skeleton (stem, reduction blocks, head) and, per copy of the
    cell, the module of each live edge, one addition per extra input of a node, or a zero
    tensor when no path joins the cell's input and output (what the builder's cell computes)."""

    def __init__(self, space: Any, input_shape: Shape, num_classes: int) -> None:
        self.space, self.input_shape, self.num_classes = space, tuple(input_shape), num_classes
        self.stage_shapes: list[Shape] = []
        sizes = self.input_shape[1:]
        for stage in range(space.stages):
            if stage:  # a stride-2 conv with padding 1, and a ceil-mode pooling: ceil(size / 2)
                sizes = tuple((s + 1) // 2 for s in sizes)
            self.stage_shapes.append((space.channels * 2**stage, *sizes))

    def _skeleton(self) -> list[str]:
        """Stem, reductions, head: the same for every cell."""
        reductions = [layer_key(f"reduce{s}", self.stage_shapes[s - 1]) for s in range(1, len(self.stage_shapes))]
        return [layer_key("stem", self.input_shape), *reductions, layer_key("head", self.stage_shapes[-1])]

    @staticmethod
    def _cell_layers(cell: Cell) -> list[str]:
        """The layer names of one canonical cell (dead edges are ``none`` already)."""
        live = [(edge, op) for edge, op in zip(EDGES, cell.ops, strict=True) if op != NONE]
        if not live:
            return ["zeros"]
        inputs: dict[int, int] = {}
        for (_, dst), _ in live:
            inputs[dst] = inputs.get(dst, 0) + 1
        return [CELL_OPS[op] for _, op in live] + ["add"] * sum(n - 1 for n in inputs.values())

    def keys(self, arch: Cell) -> list[str]:
        stem, *reductions, head = self._skeleton()
        names = self._cell_layers(canonical(arch))
        out = [stem]
        for stage, shape in enumerate(self.stage_shapes):
            if stage:
                out.append(reductions[stage - 1])
            out.extend(layer_key(name, shape) for _ in range(self.space.cells_per_stage) for name in names)
        return out + [head]

    def all_keys(self) -> list[str]:
        cell_layers = [name for name in CELL_OPS if name != "none"] + ["add", "zeros"]
        return sorted(self._skeleton() + [layer_key(n, s) for s in self.stage_shapes for n in cell_layers])

    def build(self, key: str) -> nn.Module:
        """Modules cut from a network the space builds: the skeleton's parts are the runs of
        layers between its cells; an edge's module is the one edge of a probe cell that carries
        the op straight from input to output."""
        from torch import nn

        from nas_gym.spaces.cell.model import Add, CellModule, Zeros

        layer, shape = key.rpartition("@")[0], key_shape(key)
        if layer == "add":
            return Add(shape)
        if layer == "zeros":
            return Zeros()
        op = CELL_OPS.index(layer) if layer in CELL_OPS else CELL_OPS.index("skip")
        probe = Cell(tuple(op if edge == (0, 3) else NONE for edge in EDGES))
        children = list(self.space.build_model(probe, self.input_shape, self.num_classes).children())
        cells = [i for i, m in enumerate(children) if isinstance(m, CellModule)]
        if layer in CELL_OPS:
            return children[cells[self.stage_shapes.index(shape) * self.space.cells_per_stage]].ops[0]
        bounds = [-1, *cells, len(children)]
        parts = [nn.Sequential(*children[a + 1:b]) for a, b in itertools.pairwise(bounds) if b > a + 1]
        if len(parts) != len(self.stage_shapes) + 1:
            raise ValueError(f"cell network of {len(children)} layers does not split into stem, "
                             f"{len(self.stage_shapes) - 1} reductions and head")
        if layer == "stem":
            return parts[0]
        return parts[-1] if layer == "head" else parts[int(layer.removeprefix("reduce"))]
