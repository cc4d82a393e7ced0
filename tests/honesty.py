"""Honesty checks shared by the table tests: retrain rows of a shipped table with the ordinary
single-seed trainer and compare.

The rows are drawn from a fresh seed every run, so over many runs the check covers the table
rather than the same three rows; the seed is printed and named in every failure, and
``NAS_GYM_HONESTY_SEED=<seed>`` replays a run. Rows come from the table's top 1% by mean
validation accuracy: those are the rows a search hands back, and there training is stable enough
that a small tolerance holds (mid-table cells, whose 2-epoch training is erratic, moved by up to
6.9 points: docs/benchmarks.md). The tolerances sit between two measurements on that page:
above the largest difference ordinary retraining showed from the table, below the spread of the
top 1%, so a table whose top rows were swapped or wrong would fail.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

import numpy as np

from nas_gym.config import RuntimeConfig, load_config
from nas_gym.evaluators.table import TableEvaluator

SEED_VAR = "NAS_GYM_HONESTY_SEED"


@dataclass(frozen=True)
class Tolerance:
    """In accuracy points (percent), per seed and for the mean over a row's seeds."""

    per_seed: float
    row_mean: float


def draw_seed() -> int:
    """``$NAS_GYM_HONESTY_SEED`` if set, else a fresh one; printed (pytest shows it on failure)."""
    seed = int(os.environ.get(SEED_VAR) or secrets.randbits(32))
    print(f"honesty sample drawn with seed {seed}; replay with {SEED_VAR}={seed}")
    return seed


def top_rows(table: TableEvaluator, n: int, seed: int) -> list[dict]:
    """``n`` rows of the table's top 1% by mean validation accuracy (all seeds ok), drawn with ``seed``."""
    rows = table.table.rows
    means = np.array([np.mean(r["val_acc"]) if all(s == "ok" for s in r["status"]) else -1.0 for r in rows])
    k = max(n, int(round(0.01 * np.sum(means >= 0))))
    pool = np.argsort(-means, kind="stable")[:k]
    return [rows[i] for i in np.random.default_rng(seed).choice(pool, size=n, replace=False)]


def check_retraining(preset: str, table: TableEvaluator, rows: list[dict], tol: Tolerance, seed: int) -> None:
    """Retrain each row under each of the table's seeds by the single-seed trainer (one CPU thread,
    as ``nas-gym eval`` trains) and compare parameters, FLOPs, validation and test accuracy."""
    from nas_gym.data import load_dataset
    from nas_gym.training.train import evaluate_architecture

    cfg = load_config(preset)
    space, data = cfg.search_space(), load_dataset(cfg.data)
    for row in rows:
        diffs = {"val_acc": [], "test_acc": []}
        for k, s in enumerate(table.table.seeds):
            seeded = load_config(cfg, {"train.seed": s})
            r = evaluate_architecture(space.parse(row["arch"]), data, seeded.train, RuntimeConfig(device="cpu", threads=1),
                                      want_test=True, space=space)
            where = f"{row['arch']} seed {s} ({SEED_VAR}={seed})"
            assert (r.params, r.flops) == (row["params"], row["flops"]), where
            for key in diffs:
                diff = 100 * (getattr(r, key) - row[key][k])
                assert abs(diff) <= tol.per_seed, f"{key} {diff:+.2f} points from the table: {where}"
                diffs[key].append(diff)
        for key, values in diffs.items():
            mean = float(np.mean(values))
            assert abs(mean) <= tol.row_mean, f"{key} {mean:+.2f} points on average: {row['arch']} ({SEED_VAR}={seed})"
