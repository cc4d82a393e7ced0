"""Tables with learning curves: answers at a chosen epoch, charged only for the epochs used."""

from __future__ import annotations

import numpy as np
import pytest

from nas_gym.benchmarks.header import make_header
from nas_gym.config import ConfigError, load_config
from nas_gym.evaluators import make_evaluator
from nas_gym.evaluators.base import EvalResult, FidelityEvaluator
from nas_gym.evaluators.table import TableEvaluator, make_row, write_table

EPOCHS = 4


def _curve_row(arch, rng):
    results, curves = [], {k: [] for k in ("val_acc", "test_acc", "train_loss", "train_seconds")}
    base = rng.uniform(0.3, 0.6)
    for _ in (0, 1):
        val = [min(1.0, base + 0.05 * e + rng.normal(0, 0.01)) for e in range(EPOCHS)]
        secs = list(np.cumsum(rng.uniform(0.1, 0.2, size=EPOCHS)).round(4))
        curves["val_acc"].append(val)
        curves["test_acc"].append([v - 0.01 for v in val])
        curves["train_loss"].append([1.0 / (e + 1) for e in range(EPOCHS)])
        curves["train_seconds"].append(secs)
        results.append(EvalResult(arch=arch.text(), val_acc=val[-1], test_acc=val[-1] - 0.01, params=1, flops=1,
                                  train_seconds=secs[-1], train_loss=1.0 / EPOCHS))
    return {**make_row(arch, results), "curves": curves}


@pytest.fixture
def table_path(tmp_path):
    cfg = load_config("mnist1d-cell", {"train.epochs": str(EPOCHS)})
    rng = np.random.default_rng(0)
    rows = [_curve_row(a, rng) for a in cfg.search_space().distinct()]
    path = tmp_path / "curves.jsonl.gz"
    write_table(path, make_header(cfg, [0, 1], rows, 1), rows)
    return cfg, path


def test_answers_at_each_epoch_and_charges_its_time(table_path):
    cfg, path = table_path
    for e in (1, 2, EPOCHS):
        ev = TableEvaluator(cfg, seed=0, path=path, epochs=e)
        arch = ev.space.sample(np.random.default_rng(e))
        row = ev.table.rows[ev.table.index[arch.key()]]
        r = ev.evaluate(arch)
        assert r.val_acc == row["curves"]["val_acc"][0][e - 1] and r.fidelity == e
        assert ev.stats.train_seconds == pytest.approx(row["curves"]["train_seconds"][0][e - 1])
    final = TableEvaluator(cfg, seed=0, path=path)
    arch = final.space.sample(np.random.default_rng(9))
    assert final.evaluate(arch).val_acc == final.table.rows[final.table.index[arch.key()]]["val_acc"][0]


def test_evaluate_at_pays_only_for_new_epochs(table_path):
    cfg, path = table_path
    ev = TableEvaluator(cfg, seed=1, path=path)
    assert isinstance(ev, FidelityEvaluator) and ev.max_epochs == EPOCHS
    arch = ev.space.sample(np.random.default_rng(3))
    secs = ev.table.rows[ev.table.index[arch.key()]]["curves"]["train_seconds"][1]
    ev.evaluate_at(arch, 1)
    assert ev.stats.train_seconds == pytest.approx(secs[0])
    ev.evaluate_at(arch, 3)  # continues: pays epochs 2 and 3
    assert ev.stats.train_seconds == pytest.approx(secs[2])
    ev.evaluate_at(arch, 2)  # already paid for
    assert ev.stats.train_seconds == pytest.approx(secs[2]) and ev.stats.cache_hits == 1
    ev.evaluate_at(arch, None)  # the last epoch
    assert ev.stats.train_seconds == pytest.approx(secs[-1]) and ev.stats.trained == 3
    resumed = TableEvaluator(cfg, seed=1, path=path)
    resumed.load_state(ev.state())
    resumed.evaluate(arch)
    assert resumed.stats.cache_hits == ev.stats.cache_hits + 1


def test_epochs_out_of_range_or_without_curves_are_refused_in_one_line(table_path):
    cfg, path = table_path
    with pytest.raises(ConfigError, match=r"evaluator.epochs=9: .* 1..4 epochs"):
        TableEvaluator(cfg, path=path, epochs=9)
    with pytest.raises(ConfigError, match="no learning curves"):
        make_evaluator(load_config("mnist1d-tiny", {"evaluator.kind": "table", "evaluator.epochs": "1"}))
    with pytest.raises(ConfigError, match="table evaluator only"):
        load_config("mnist1d-tiny", {"evaluator.kind": "train", "evaluator.epochs": "1"})


def test_successive_halving_on_a_curve_table_pays_only_for_the_epochs_it_uses(table_path):
    from nas_gym.agents.successive_halving import SuccessiveHalving, table_factory

    cfg, path = table_path
    ev = TableEvaluator(cfg, seed=0, path=path)
    sh = SuccessiveHalving(table_factory(ev), eta=2, min_budget=1, max_budget=EPOCHS)
    assert sh.budgets == [1, 2, 4]
    rng = np.random.default_rng(7)
    archs = list({a.key(): a for a in (ev.space.sample(rng) for _ in range(8))}.values())[:8]
    result = sh.run(archs)
    # each architecture pays the seconds of the last epoch it reached, not the sum of its rungs
    reached: dict[str, int] = {}
    for rung in result.rungs:
        for arch, _ in rung.results:
            reached[arch.key()] = int(rung.budget)
    secs = {a.key(): ev.table.rows[ev.table.index[a.key()]]["curves"]["train_seconds"][0] for a in archs}
    want = sum(secs[k][e - 1] for k, e in reached.items())
    assert result.train_seconds == pytest.approx(want) == pytest.approx(ev.stats.train_seconds)
    best, best_result = result.best
    assert best_result.fidelity == EPOCHS
    assert best_result.val_acc == ev.table.rows[ev.table.index[best.key()]]["curves"]["val_acc"][0][EPOCHS - 1]
    assert len(result.rungs[0].results) == len(archs) and len(result.rungs[-1].results) == max(1, len(archs) // 4)
