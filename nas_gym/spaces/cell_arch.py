"""The cell's values: the op vocabulary, the edges, a ``Cell`` and its canonical form.

No torch and no space here: the space (``nas_gym.spaces.cell``), its builder, FLOP counter and
supernet all import these, and none of them import each other's modules at load time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from nas_gym.spaces.base import ArchitectureError

CELL_OPS = ("none", "skip", "conv1", "conv3", "avgpool3")
NONE = 0
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))  # (source, target), in NAS-Bench-201's order
N_NODES = 4


@dataclass(frozen=True)
class Cell:
    """A complete cell (6 op indices into ``CELL_OPS``, one per edge of ``EDGES``) or, during an
    episode, the ops of its first edges."""

    ops: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.ops, tuple) or len(self.ops) > len(EDGES) or \
                not all(isinstance(o, int) and 0 <= o < len(CELL_OPS) for o in self.ops):
            raise ArchitectureError(f"a cell is up to {len(EDGES)} op indices in 0..{len(CELL_OPS) - 1}, got {self.ops}")

    @property
    def complete(self) -> bool:
        return len(self.ops) == len(EDGES)

    def text(self) -> str:
        """NAS-Bench-201's string; edges not chosen yet print as ``?``."""
        ops = [CELL_OPS[o] for o in self.ops] + ["?"] * (len(EDGES) - len(self.ops))
        groups = []
        for node in range(1, N_NODES):
            groups.append("|".join(f"{ops[e]}~{src}" for e, (src, dst) in enumerate(EDGES) if dst == node))
        return "|" + "|+|".join(groups) + "|"

    __str__ = text

    @classmethod
    def parse(cls, text: str) -> Cell:
        groups = text.strip().strip("|").split("|+|")
        if len(groups) != N_NODES - 1:
            raise ArchitectureError(f"cannot parse cell {text!r}: expected {N_NODES - 1} node groups joined by '|+|', "
                                    "e.g. |conv3~0|+|skip~0|conv1~1|+|none~0|conv3~1|avgpool3~2|")
        found: dict[tuple[int, int], int] = {}
        for node, group in enumerate(groups, start=1):
            for token in group.split("|"):
                name, sep, src = token.partition("~")
                if not sep or name not in CELL_OPS or not src.isdigit() or int(src) >= node:
                    raise ArchitectureError(f"cannot parse cell edge {token!r} of node {node}: expected op~source with "
                                            f"op one of {', '.join(CELL_OPS)} and source < {node}")
                found[(int(src), node)] = CELL_OPS.index(name)
        if set(found) != set(EDGES):
            raise ArchitectureError(f"cell {text!r} must name every edge j~i (j < i) exactly once")
        return cls(tuple(found[e] for e in EDGES))

    def key(self) -> str:
        """The digest of the canonical form: equal networks, equal keys (see the module docstring)."""
        return hashlib.sha256(canonical(self).text().encode()).hexdigest()[:20]


def live_edges(ops: tuple[int, ...]) -> list[bool]:
    """Which edges lie on a path from the input (node 0) to the output (node 3) of non-``none``
    edges: the others change nothing in the network."""
    forward = {0}
    for src, dst in EDGES:  # EDGES is in topological order of targets
        if src in forward and ops[EDGES.index((src, dst))] != NONE:
            forward.add(dst)
    backward = {N_NODES - 1}
    for src, dst in reversed(EDGES):
        if dst in backward and ops[EDGES.index((src, dst))] != NONE:
            backward.add(src)
    return [op != NONE and src in forward and dst in backward for op, (src, dst) in zip(ops, EDGES, strict=True)]


def _swap_middle(ops: tuple[int, ...]) -> tuple[int, ...]:
    """Relabel nodes 1 <-> 2 (valid only when edge 1 -> 2 is ``none``)."""
    e = {edge: op for edge, op in zip(EDGES, ops, strict=True)}
    return (e[(0, 2)], e[(0, 1)], e[(1, 2)], e[(0, 3)], e[(2, 3)], e[(1, 3)])


def canonical(cell: Cell) -> Cell:
    """The representative of ``cell``'s network: dead edges set to ``none``, then the smaller
    of the cell and its 1 <-> 2 relabelling (when that is a valid ordering)."""
    if not cell.complete:
        raise ArchitectureError(f"cell {cell.text()} is incomplete; choose all {len(EDGES)} edges")
    pruned = tuple(op if live else NONE for op, live in zip(cell.ops, live_edges(cell.ops), strict=True))
    forms = [pruned]
    if pruned[EDGES.index((1, 2))] == NONE:
        forms.append(_swap_middle(pruned))
    return Cell(min(forms))
