"""The shipped ``mnist1d-noisy-cell`` table (learning curves, 3 seeds): it covers every distinct
cell with every seed and every epoch, its header describes the preset, and the env answers at each
fidelity with that epoch's recorded validation accuracy and charges that epoch's recorded seconds.
The retraining check of this table is ``tests/test_curve_honesty.py``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import nas_gym  # noqa: F401  (registers the env)
from nas_gym.config import load_config
from nas_gym.evaluators.table import TABLE_DIR, TableEvaluator, built_config, read_header
from nas_gym.spaces.cell.arch import canonical

PRESET = "mnist1d-noisy-cell"
SHIPPED = TABLE_DIR / f"{PRESET}.jsonl.gz"
EPOCHS = load_config(PRESET).train.epochs
CURVES = ("val_acc", "test_acc", "train_loss", "train_seconds")


@pytest.fixture(scope="module")
def shipped() -> TableEvaluator:
    return TableEvaluator(load_config(PRESET))


def test_every_distinct_cell_has_three_seeds_and_a_whole_curve_each(shipped):
    distinct = load_config(PRESET).search_space().distinct()
    assert len(distinct) == 5_044 == len(shipped.table.rows)
    assert {c.key() for c in distinct} == set(shipped.table.index)
    assert shipped.table.header["seeds"] == [0, 1, 2]
    for row in shipped.table.rows:
        for field in CURVES:
            curves = row["curves"][field]
            assert len(curves) == 3 and all(len(c) == EPOCHS for c in curves), (row["arch"], field)
        assert all(np.all(np.diff(s) > 0) for s in row["curves"]["train_seconds"]), "seconds are cumulative"
        assert row["val_acc"] == [c[-1] for c in row["curves"]["val_acc"]], "the final value is the last epoch"
        assert row["params"] > 0 and row["flops"] > 0
    assert SHIPPED.stat().st_size < 5_000_000


def test_header_matches_the_preset():
    header = read_header(SHIPPED)
    cfg = load_config(PRESET)
    assert header["preset"] == PRESET and header["space_size"] == 5_044
    for s in header["seeds"]:
        assert header["context_hashes"][str(s)] == load_config(PRESET, {"train.seed": s}).context_hash()
    built = built_config(header)
    assert (built.space, built.data, built.train) == (cfg.space, cfg.data, cfg.train)


@pytest.mark.parametrize("epochs", range(1, EPOCHS + 1))
def test_the_env_answers_at_each_fidelity_from_that_epoch(shipped, epochs):
    """``evaluator.epochs=E`` through ``gym.make``: the reward is epoch E's validation accuracy of
    the table's seed, and the simulated clock is charged epoch E's recorded seconds."""
    env = gym.make("NasGym/Cell-v0", config=PRESET, evaluator="table",
                   overrides={"evaluator.kind": "table", "evaluator.epochs": str(epochs),
                              "evaluator.table_seed": "1"})
    env.reset(seed=epochs)
    rng = np.random.default_rng(epochs)
    charged = 0.0
    for _ in range(3):
        env.reset()
        terminated = False
        while not terminated:
            _, reward, terminated, _, info = env.step(int(rng.integers(5)))
        row = shipped.table.rows[shipped.table.index[canonical(env.unwrapped.space.parse(info["arch"])).key()]]
        assert reward == row["curves"]["val_acc"][1][epochs - 1]
        charged += row["curves"]["train_seconds"][1][epochs - 1]
    stats = env.unwrapped.evaluator.stats
    assert stats.trained == 3 and stats.train_seconds == pytest.approx(charged)
    env.close()


def test_validation_is_not_test_and_accuracies_spread(shipped):
    val = np.array([np.mean(r["val_acc"]) for r in shipped.table.rows])
    test = np.array([np.mean(r["test_acc"]) for r in shipped.table.rows])
    within = np.median([np.std(r["val_acc"]) for r in shipped.table.rows])
    assert val.max() - np.percentile(val, 10) > 0.05, "a benchmark needs accuracies that spread"
    assert val.std() > 2 * within, "cells differ by more than a seed moves one (4.46 vs 1.22 points measured)"
    assert np.mean(val != test) > 0.5
