"""What a cell computes, written so that equal functions give equal strings.

The cell key of table format 1 merged cells by structure (dead edges dropped, nodes 1 and 2
swapped); the shipped format-1 table then held 1,162 groups of bit-identical rows under different
keys, all explained by three facts about the network (``nas_gym.spaces.cell.model``):

* ``skip`` is the identity, so a node fed only by a ``skip`` is another name for its source, and
  a ``skip`` into a sum adds the source's terms to that sum;
* a node is a sum, and sums are commutative and associative, so terms are a multiset;
* ``avgpool3`` is linear and has no parameters: the pool of a sum is the sum of the pools
  (``avg(x + x)`` and ``avg(x) + avg(x)`` gave bit-identical rows), and two pools of one value
  are one value twice.

A ``conv1`` or ``conv3`` edge (ReLU-conv-BN) has weights of its own: two such edges are two
instances even when they read the same value, and one instance read twice (through a ``skip``)
is not two. The form is therefore parameter-aware: every conv instance is written with an index,
and where two instances have the same structure the indices are chosen to make the string
smallest, so the string depends on the function alone.

Nothing here imports torch; ``functional_form`` runs over all 15,625 cells once per process.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from nas_gym.spaces.cell.graph import CELL_OPS, EDGES, N_NODES, NONE, live_edges

# A term is a nested tuple: ("x",) for the cell input, ("avg", term) for the pool of one term
# (pools distribute over sums), ("conv1", i, sum) for conv instance i; a sum is a sorted tuple
# of terms.
Term = tuple
_SKIP, _POOL = CELL_OPS.index("skip"), CELL_OPS.index("avgpool3")


def _graph(ops: Sequence[int]) -> tuple[list[Term], list[tuple[str, Term]]]:
    """The output's terms and the conv instances ``(op, input sum)``, instance i at index i."""
    live = live_edges(tuple(ops))
    nodes: list[list[Term]] = [[("x",)]] + [[] for _ in range(N_NODES - 1)]
    convs: list[tuple[str, Term]] = []
    for (src, dst), op, alive in zip(EDGES, ops, live, strict=True):
        if not alive or op == NONE:
            continue
        source = tuple(sorted(nodes[src]))
        if op == _SKIP:
            nodes[dst].extend(nodes[src])
        elif op == _POOL:
            nodes[dst].extend(("avg", t) for t in nodes[src])
        else:
            nodes[dst].append((CELL_OPS[op], len(convs), source))
            convs.append((CELL_OPS[op], source))
    return nodes[-1], convs


def _relabel(term: Term, mapping: Sequence[int]) -> Term:
    if term[0] == "x":
        return term
    if term[0] == "avg":
        return ("avg", _relabel(term[1], mapping))
    return (term[0], mapping[term[1]], tuple(sorted(_relabel(t, mapping) for t in term[2])))


def _strip(term: Term) -> Term:
    """The term with instance indices erased: what an instance looks like from outside."""
    if term[0] == "x":
        return term
    if term[0] == "avg":
        return ("avg", _strip(term[1]))
    return (term[0], tuple(sorted(_strip(t) for t in term[2])))


def functional_form(ops: Sequence[int]) -> str:
    """A string equal for two complete cells exactly when they compute the same function of
    their input with the same parameter instances (up to renaming instances)."""
    out, convs = _graph(ops)
    if not out:
        return "zero"
    shapes = [_strip((op, 0, source)) for op, source in convs]
    # Instances that look alike may be renamed among themselves; instances that differ keep an
    # order fixed by their shape. At most 6 instances, so trying every renaming within a group
    # of look-alikes is cheap (and almost always there is one renaming).
    order = sorted(range(len(convs)), key=lambda i: repr(shapes[i]))
    groups = [list(g) for _, g in itertools.groupby(order, key=lambda i: repr(shapes[i]))]
    best = None
    for perms in itertools.product(*(itertools.permutations(g) for g in groups)):
        mapping = [0] * len(convs)
        for new, old in enumerate(i for perm in perms for i in perm):
            mapping[old] = new
        text = repr((tuple(sorted(_relabel(t, mapping) for t in out)),
                     tuple(sorted((convs[old][0], new, tuple(sorted(_relabel(t, mapping) for t in convs[old][1])))
                                  for old, new in enumerate(mapping)))))
        if best is None or text < best:
            best = text
    return best
