"""The cell as a value: a ``Cell`` (parsed, printed, keyed) and its structural and canonical forms.

No torch and no space here: the space (``nas_gym.spaces.cell.space``), its builder, FLOP counter and
supernet all import these, and none of them import each other's modules at load time.

Two cells share a canonical form when they compute the same function with the same parameters
(``nas_gym.spaces.cell.function``): the builder builds the canonical cell, so every cell of one key
trains as the very same network, with the same initial weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from nas_gym.spaces.base import ArchitectureError
from nas_gym.spaces.cell.graph import CELL_OPS, EDGES, N_NODES, NONE, live_edges

__all__ = ["CELL_OPS", "EDGES", "N_NODES", "NONE", "Cell", "canonical", "live_edges", "structural"]


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


def _swap_middle(ops: tuple[int, ...]) -> tuple[int, ...]:
    """Relabel nodes 1 <-> 2 (valid only when edge 1 -> 2 is ``none``)."""
    e = {edge: op for edge, op in zip(EDGES, ops, strict=True)}
    return (e[(0, 2)], e[(0, 1)], e[(1, 2)], e[(0, 3)], e[(2, 3)], e[(1, 3)])


def structural(cell: Cell) -> Cell:
    """The structural form (the cell key of table format 1): dead edges set to ``none``, then the
    smaller of the cell and its 1 <-> 2 relabelling (when that is a valid ordering). It merges
    8,765 classes; ``canonical`` merges further, by function."""
    if not cell.complete:
        raise ArchitectureError(f"cell {cell.text()} is incomplete; choose all {len(EDGES)} edges")
    pruned = tuple(op if live else NONE for op, live in zip(cell.ops, live_edges(cell.ops), strict=True))
    forms = [pruned]
    if pruned[EDGES.index((1, 2))] == NONE:
        forms.append(_swap_middle(pruned))
    return Cell(min(forms))


@cache
def _representatives() -> dict[tuple[int, ...], Cell]:
    """Every cell's canonical form: the smallest structural form among the cells of its function.

    Computed once per process over all 5^6 cells (about half a second); the smallest
    structural form keeps the key and the network of every cell that format 1 stored already.
    """
    import itertools

    from nas_gym.spaces.cell.function import functional_form

    shape_of = {ops: structural(Cell(ops)).ops for ops in itertools.product(range(len(CELL_OPS)), repeat=len(EDGES))}
    form_of = {shape: functional_form(shape) for shape in set(shape_of.values())}  # one cell per structure
    best: dict[str, tuple[int, ...]] = {}
    for shape, form in form_of.items():
        if form not in best or shape < best[form]:
            best[form] = shape
    cells = {shape: Cell(shape) for shape in best.values()}
    return {ops: cells[best[form_of[shape]]] for ops, shape in shape_of.items()}


def canonical(cell: Cell) -> Cell:
    """The representative of ``cell``'s network: of all cells that compute the same function with
    the same parameters (``nas_gym.spaces.cell.function``), the one with the smallest structural
    form. Building it builds exactly the network every cell of the class would mean."""
    if not cell.complete:
        raise ArchitectureError(f"cell {cell.text()} is incomplete; choose all {len(EDGES)} edges")
    return _representatives()[cell.ops]
