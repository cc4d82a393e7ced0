"""The functional cell key: equal keys mean the same function with the same parameters.

Checked against an interpreter of the cell's own semantics that knows nothing of the key: each
node sums its incoming edges, ``skip`` is the identity, ``avgpool3`` a fixed linear map, a conv
edge a ReLU then a weight matrix of its own. Two cells compute the same function when some
op-preserving pairing of their conv edges, given equal weights, gives equal outputs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from nas_gym.spaces.cell.arch import structural
from nas_gym.spaces.cell.function import functional_form
from nas_gym.spaces.cell.space import CELL_OPS, EDGES, Cell, CellSpace, canonical

_DIM = 6
_CONVS = (CELL_OPS.index("conv1"), CELL_OPS.index("conv3"))


def _output(ops: tuple[int, ...], weights: dict[int, np.ndarray], pool: np.ndarray, x: np.ndarray) -> np.ndarray:
    nodes = [x] + [np.zeros(_DIM) for _ in range(3)]
    for e, ((src, dst), op) in enumerate(zip(EDGES, ops, strict=True)):
        name = CELL_OPS[op]
        if name == "skip":
            nodes[dst] = nodes[dst] + nodes[src]
        elif name == "avgpool3":
            nodes[dst] = nodes[dst] + pool @ nodes[src]
        elif name != "none":
            nodes[dst] = nodes[dst] + weights[e] @ np.maximum(nodes[src], 0.0)
    return nodes[3]


def _live_convs(ops: tuple[int, ...]) -> list[int]:
    """Conv edges on a path of non-``none`` edges from input to output: the network builds no
    other (a conv edge fed only by zeros or read by nothing is not built, NAS-Bench-201's pruning)."""
    edges = [(s, d) for (s, d), op in zip(EDGES, ops, strict=True) if CELL_OPS[op] != "none"]
    reach_from, reach_to = {0}, {3}
    for _ in range(3):
        reach_from |= {d for s, d in edges if s in reach_from}
        reach_to |= {s for s, d in edges if d in reach_to}
    return [e for e, op in enumerate(ops) if op in _CONVS and EDGES[e][0] in reach_from and EDGES[e][1] in reach_to]


def same_function(a: tuple[int, ...], b: tuple[int, ...], rng: np.random.Generator) -> bool:
    """Whether some op-preserving pairing of conv edges makes ``a`` and ``b`` agree on random inputs."""
    conv_a, conv_b = _live_convs(a), _live_convs(b)
    if sorted(a[e] for e in conv_a) != sorted(b[e] for e in conv_b):
        return False
    pool = rng.normal(size=(_DIM, _DIM))
    xs = [rng.normal(size=_DIM) for _ in range(2)]
    ws = {e: rng.normal(size=(_DIM, _DIM)) for e, op in enumerate(a) if op in _CONVS}  # dead ones too
    want = [_output(a, ws, pool, x) for x in xs]
    for perm in itertools.permutations(conv_b):
        if any(a[ea] != b[eb] for ea, eb in zip(conv_a, perm, strict=True)):
            continue
        wb = {e: rng.normal(size=(_DIM, _DIM)) for e, op in enumerate(b) if op in _CONVS}
        wb.update({eb: ws[ea] for ea, eb in zip(conv_a, perm, strict=True)})
        if all(np.allclose(_output(b, wb, pool, x), w, rtol=1e-9, atol=1e-9) for x, w in zip(xs, want, strict=True)):
            return True
    return False


ALL = [tuple(ops) for ops in itertools.product(range(len(CELL_OPS)), repeat=len(EDGES))]


def test_counts():
    """15,625 cells; 8,765 structural classes (format 1's key); 5,044 functional ones."""
    assert len({structural(Cell(o)) for o in ALL}) == 8765
    assert len({canonical(Cell(o)) for o in ALL}) == 5044
    assert len({functional_form(o) for o in ALL}) == 5044


def test_representative_is_a_member_and_a_fixed_point():
    for ops in ALL[::37]:
        rep = canonical(Cell(ops))
        assert functional_form(rep.ops) == functional_form(ops)
        assert canonical(rep) == rep and structural(rep) == rep


def test_equal_keys_compute_the_same_function():
    seed = int(np.random.SeedSequence().entropy % 2**32)
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    classes: dict[Cell, list[tuple[int, ...]]] = {}
    for ops in ALL:
        classes.setdefault(canonical(Cell(ops)), []).append(ops)
    merged = [m for m in classes.values() if len({structural(Cell(o)) for o in m}) > 1]
    for i in rng.choice(len(merged), size=200, replace=False):
        a, b = (merged[i][j] for j in rng.choice(len(merged[i]), size=2, replace=False))
        assert Cell(a).key() == Cell(b).key()
        assert same_function(a, b, rng), (Cell(a).text(), Cell(b).text(), seed)


def test_different_keys_compute_different_functions():
    """Random pairs, and the hard ones: pairs whose conv edges are of the same kinds."""
    seed = int(np.random.SeedSequence().entropy % 2**32)
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    checked = 0
    while checked < 300:
        a, b = (ALL[i] for i in rng.integers(len(ALL), size=2))
        if sorted(a[e] for e in _live_convs(a)) != sorted(b[e] for e in _live_convs(b)):
            continue
        if Cell(a).key() != Cell(b).key():
            assert not same_function(a, b, rng), (Cell(a).text(), Cell(b).text(), seed)
            checked += 1


@pytest.mark.parametrize("pair", [("|skip~0|+|none~0|conv3~1|+|none~0|none~1|skip~2|",
                                   "|none~0|+|none~0|none~1|+|conv3~0|none~1|none~2|"),
                                  ("|skip~0|+|skip~0|skip~1|+|none~0|none~1|avgpool3~2|",
                                   "|none~0|+|skip~0|none~1|+|avgpool3~0|none~1|avgpool3~2|")])
def test_equal_keys_build_identical_networks(pair):
    """A skip-only node is its source's alias; a pool of a sum is the sum of pools."""
    space = CellSpace(8, 2, 1, (1, 40))
    a, b = (Cell.parse(t) for t in pair)
    assert a.key() == b.key()
    torch.manual_seed(0)
    net_a = space.build_model(a, (1, 40), 10)
    torch.manual_seed(0)
    net_b = space.build_model(b, (1, 40), 10)
    assert str(net_a) == str(net_b)
    assert all(torch.equal(p, q) for p, q in zip(net_a.state_dict().values(), net_b.state_dict().values(), strict=True))


def test_shared_conv_is_not_two_convs():
    """``n1 = conv3(x); out = n1 + conv1(n1)`` has one conv3; with two separate conv3 edges it has two."""
    one = Cell.parse("|conv3~0|+|none~0|skip~1|+|none~0|skip~1|conv1~2|")
    two = Cell.parse("|conv3~0|+|conv3~0|none~1|+|none~0|skip~1|conv1~2|")
    assert one.key() != two.key()
