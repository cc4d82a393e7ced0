"""The benchmark table's figures (``nas_gym/benchmarks/table_stats.py``) on hand-made arrays whose
answers are known, and the report script on a small lines file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas_gym.benchmarks import table_stats as ts


def _arrays(val: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    secs = np.broadcast_to(np.arange(1, val.shape[2] + 1, dtype=float), val.shape).copy()
    return val, val - 0.01, secs


def test_identical_seeds_agree_perfectly_and_reversed_ones_not_at_all():
    ranks = np.linspace(0.5, 0.9, 20)
    same = np.stack([ranks, ranks, ranks], axis=1)[:, :, None]
    assert ts.seed_tau(same) == pytest.approx(1.0)
    flipped = np.stack([ranks, ranks[::-1], ranks], axis=1)[:, :, None]
    # pairs (0,1) and (1,2) are reversed (-1), (0,2) agree (+1)
    assert ts.seed_tau(flipped) == pytest.approx(-1 / 3)


def test_top_tau_ranks_the_top_by_seed_zero_and_measures_on_the_others():
    rng = np.random.default_rng(0)
    n = 100
    base = np.linspace(0.0, 1.0, n)
    val = np.stack([base, base, rng.permutation(base)], axis=1)[:, :, None]
    # seeds 1 and 2 disagree at random over the top 10, so their tau is that of a random shuffle
    top = np.argsort(-base)[:10]
    assert ts.top_tau(val) == pytest.approx(ts.tau(val[top, 1, 0], val[top, 2, 0]))
    val[:, 2, 0] = base
    assert ts.top_tau(val) == pytest.approx(1.0)


def test_expected_draws_weights_classes_by_their_structural_cells():
    weights = np.array([1, 3, 6])
    assert ts.expected_draws(weights, np.array([True, False, False])) == pytest.approx(10.0)
    assert ts.expected_draws(weights, np.array([False, True, True])) == pytest.approx(10 / 9)
    assert ts.expected_draws(weights, np.array([False, False, False])) == float("inf")


def test_figures_find_the_optimum_and_the_epoch_fidelity():
    n, seeds, epochs = 200, 3, 3
    final = np.linspace(0.5, 0.9, n)
    val = np.empty((n, seeds, epochs))
    val[:, :, 2] = final[:, None]
    val[:, :, 1] = final[:, None] * 0.9
    val[:, :, 0] = final[::-1, None]  # the first epoch ranks backwards
    v, t, s = _arrays(val)
    f = ts.figures(v, t, s, np.ones(n, dtype=int))
    assert f.optimum == pytest.approx(90.0) and f.optimum_test == pytest.approx(89.0)
    assert f.vs_last == pytest.approx([-1.0, 1.0, 1.0])
    assert f.draws_top1 == pytest.approx(n / 2)  # the top 1% of 200 cells is 2 cells
    assert f.draws_optimum == pytest.approx(n)
    assert f.cpu_hours == pytest.approx(n * seeds * 3 / 3600)
    assert f.within == pytest.approx(0.0)


def test_report_script_reads_a_partial_build(tmp_path, capsys):
    from nas_gym.benchmarks.table_report import main
    from nas_gym.config import load_config

    space = load_config("mnist1d-cell").search_space()
    cells = space.distinct()[:12]
    lines = tmp_path / "lines.jsonl"
    rng = np.random.default_rng(1)
    with lines.open("w") as fh:
        for i, cell in enumerate(cells):
            for seed in range(3 if i < 10 else 2):  # the last two cells are incomplete
                val = [0.5 + 0.03 * i + rng.normal(0, 0.001), 0.6 + 0.03 * i]
                fh.write(json.dumps({"arch": cell.text(), "seed": seed, "val": val, "test": val,
                                     "seconds": [1.0, 2.0]}) + "\n")
    assert main(["--config", "mnist1d-cell", "--lines", str(lines)]) == 0
    out = capsys.readouterr().out
    assert "10 of 5,044 functional classes (a uniform sample), 3 seeds, 2 epochs" in out
    assert "seed-to-seed tau 1.000" in out
    assert "best seed-mean val of the sample 87.00%" in out
