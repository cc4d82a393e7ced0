"""What a network is made of, for the latency model: its layers, each named with its input shape.

A layer key is ``<layer>@<input shape>``, e.g. ``conv3-32s2@16x40``: the unit the latency table
stores one measured time for. A space's decomposition answers three questions:

* ``keys(arch)``: the layers of ``arch``'s network, in order (the prediction sums their times);
* ``all_keys()``: every key any architecture of the space can produce (what the profile
  measures), found by walking the space's own rules, not by enumerating architectures;
* ``build(key)``: the module to time for a key, taken from a model the space itself builds, so
  the table measures exactly the modules the network runs.

No torch at import time: predicting a latency reads keys only (``nas_gym.rewards``); ``build``
imports torch when the profile needs modules.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Protocol

from nas_gym.spaces.cell.space import CELL_OPS, EDGES, NONE, Cell, CellSpace, canonical
from nas_gym.spaces.layer_chain.chain import CONV, EMPTY, RES, Chain, Op
from nas_gym.spaces.layer_chain.space import LayerChainSpace

if TYPE_CHECKING:
    from torch import nn

Shape = tuple[int, ...]


def layer_key(layer: str, shape: Shape) -> str:
    return f"{layer}@{'x'.join(map(str, shape))}"


def key_shape(key: str) -> Shape:
    """The input shape a key names (``conv3-16@8x40`` -> ``(8, 40)``)."""
    return tuple(int(n) for n in key.rpartition("@")[2].split("x"))


class Layers(Protocol):
    """A space's decomposition (see the module docstring)."""

    def keys(self, arch: Any) -> list[str]: ...

    def all_keys(self) -> list[str]: ...

    def build(self, key: str) -> nn.Module: ...


class ChainLayers:
    """A layer chain's network: one layer per op, then the head (global pooling + linear), whose
    cost depends on the last channel count and spatial size."""

    def __init__(self, space: LayerChainSpace, input_shape: Shape, num_classes: int) -> None:
        self.space, self.input_shape, self.num_classes = space, tuple(input_shape), num_classes
        self._ops: dict[str, Op] = {op.text(): op for op in space.ops}

    def _shape_after(self, shape: Shape, op: Op) -> Shape:
        channels = op.channels if op.kind in (CONV, RES) else shape[0]
        return (channels, *(op.out_size(s) for s in shape[1:]))

    def _shape_of(self, ops: tuple[Op, ...]) -> Shape:
        shape = self.input_shape
        for op in ops:
            shape = self._shape_after(shape, op)
        return shape

    def keys(self, arch: Chain) -> list[str]:
        shape, out = self.input_shape, []
        for op in arch.ops:
            out.append(layer_key(op.text(), shape))
            shape = self._shape_after(shape, op)
        out.append(layer_key("head", shape))
        return out

    def all_keys(self) -> list[str]:
        """Depth-first over prefixes, merging those with equal rule state (the space's
        ``transition_key``) and equal output shape: both decide every layer that can follow."""
        space, found, seen = self.space, set(), set()
        stack = [space.empty()]
        while stack:
            prefix = stack.pop()
            shape = self._shape_of(prefix.ops)
            state = (space.transition_key(prefix), shape)
            if state in seen:
                continue
            seen.add(state)
            mask = space.mask(prefix)
            if mask[space.stop_action]:
                found.add(layer_key("head", shape))
            for action, op in enumerate(space.ops):
                if mask[action]:
                    found.add(layer_key(op.text(), shape))
                    stack.append(space.step(prefix, action)[0])
        return sorted(found)

    def build(self, key: str) -> nn.Module:
        """The op's module from a one-op network the space builds (its first layer), or the
        head: the whole network of the empty chain."""
        layer, shape = key.rpartition("@")[0], key_shape(key)
        if layer == "head":
            return self.space.build_model(EMPTY, shape, self.num_classes)
        return self.space.build_model(Chain((self._ops[layer],)), shape, self.num_classes)[0]


class CellLayers:
    """A cell network: the fixed skeleton (stem, reduction blocks, head) and, per copy of the
    cell, the module of each live edge, one addition per extra input of a node, or a zero
    tensor when no path joins the cell's input and output (what the builder's cell computes)."""

    def __init__(self, space: CellSpace, input_shape: Shape, num_classes: int) -> None:
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

        from nas_gym.latency.ops import Add, Zeros
        from nas_gym.spaces.cell.model import CellModule

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


def layers_for(space: Any, input_shape: Shape, num_classes: int) -> Layers:
    """The decomposition of ``space``'s networks.

    :raises ValueError: a space the latency model cannot decompose (one line, naming the fix).
    """
    if isinstance(space, LayerChainSpace):
        return ChainLayers(space, input_shape, num_classes)
    if isinstance(space, CellSpace):
        return CellLayers(space, input_shape, num_classes)
    raise ValueError(f"reward.cost 'latency_model' knows the layer_chain and cell spaces, not {space.kind!r}; "
                     "use reward.cost 'latency' (measured) or 'flops'")
