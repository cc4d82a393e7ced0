"""The cell's graph: the op vocabulary, the edges and which of them reach the output.

The bottom of the cell modules, importing none of them: ``cell_arch`` (the value object) and
``cell_function`` (the functional form that ``cell_arch``'s canonical form is computed from) both
read these, so neither has to import the other at load time.
"""

from __future__ import annotations

CELL_OPS = ("none", "skip", "conv1", "conv3", "avgpool3")
NONE = 0
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))  # (source, target), in NAS-Bench-201's order
N_NODES = 4


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
