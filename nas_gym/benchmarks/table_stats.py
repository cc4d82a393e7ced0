"""What a benchmark table is worth: the figures ``docs/benchmarks.md`` gives for a learning-curve table.

A table is useful for comparing searchers only if its ranking is reproducible (two training seeds
agree), if its good cells are not crowded at the ceiling (so the top is still ranked), and if the
optimum is neither trivial nor hopeless to find. These functions compute those figures from arrays
``(cells, seeds, epochs)`` of validation accuracy, so the same code serves a partial build (a
uniform sample, since the build trains cells in a seeded random order) and the finished table.

Definitions:

* seed-to-seed tau: Kendall tau between two seeds' last-epoch validation accuracies over all
  cells, the mean over pairs of seeds;
* top-10% tau: the best 10% chosen by seed 0, then the tau of seeds 1 and 2 over them alone
  (choosing and measuring on different seeds keeps the choice's luck out of the measurement);
* epoch vs last: Kendall tau of the seed-mean at each epoch against the seed-mean at the last;
* within / between: the median over cells of the standard deviation across seeds, and the
  standard deviation across cells of the seed mean, in accuracy points;
* random search's evaluations to a target set: the expected number of draws until the first hit
  when each draw picks one of the space's structural cells uniformly (as random search over the
  env's actions does), so a functional class is drawn in proportion to its number of structural
  cells: ``1 / p`` with ``p`` the share of structural cells in the target classes. Repeats are
  counted as draws (NATS-Bench's accounting); the target is ranked by the seed-mean last-epoch
  validation accuracy.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau


def tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall tau over the entries finite in both; NaN with fewer than three."""
    ok = np.isfinite(a) & np.isfinite(b)
    return float(kendalltau(a[ok], b[ok])[0]) if ok.sum() > 2 else float("nan")


def seed_tau(val: np.ndarray, epoch: int = -1) -> float:
    """Mean Kendall tau over pairs of seeds at ``epoch`` (``val``: cells x seeds x epochs)."""
    v = val[:, :, epoch]
    return float(np.nanmean([tau(v[:, i], v[:, j]) for i, j in itertools.combinations(range(v.shape[1]), 2)]))


def top_tau(val: np.ndarray, share: float = 0.1) -> float:
    """Tau of seeds 1 and 2 over the best ``share`` of cells as ranked by seed 0 (last epoch)."""
    if val.shape[1] < 3:
        return float("nan")
    last = val[:, :, -1]
    top = np.argsort(-np.nan_to_num(last[:, 0], nan=-1.0))[: max(3, int(round(len(last) * share)))]
    return tau(last[top, 1], last[top, 2])


def epoch_vs_last(val: np.ndarray) -> list[float]:
    """Per epoch, Kendall tau of the seed-mean at that epoch against the seed-mean at the last."""
    mean = np.nanmean(val, axis=1)
    return [tau(mean[:, e], mean[:, -1]) for e in range(val.shape[2])]


def expected_draws(weights: np.ndarray, hit: np.ndarray) -> float:
    """Expected uniform draws over structural cells until one lands in a ``hit`` class.

    :param weights: structural cells per class.
    :param hit: which classes count as found.
    """
    p = float(weights[hit].sum()) / float(weights.sum())
    return 1.0 / p if p > 0 else float("inf")


@dataclass(frozen=True)
class TableFigures:
    cells: int
    seeds: int
    tau_all: float
    tau_top: float
    vs_last: list[float]
    median: float
    within: float
    between: float
    optimum: float
    optimum_test: float
    draws_top1: float
    draws_optimum: float
    cpu_hours: float


def figures(val: np.ndarray, test: np.ndarray, seconds: np.ndarray, weights: Sequence[int]) -> TableFigures:
    """The figures of a table (or of a uniform sample of it) from its arrays.

    :param val, test, seconds: cells x seeds x epochs; seconds are each member's cumulative
        CPU-seconds at each epoch.
    :param weights: structural cells per class, aligned with the cells.
    """
    w = np.asarray(weights, dtype=float)
    mean = np.nanmean(val[:, :, -1], axis=1)
    ranked = np.argsort(-np.nan_to_num(mean, nan=-1.0))
    top = np.zeros(len(mean), dtype=bool)
    top[ranked[: max(1, int(np.ceil(0.01 * len(mean))))]] = True
    best = np.zeros(len(mean), dtype=bool)
    best[ranked[0]] = True
    return TableFigures(
        cells=int(val.shape[0]), seeds=int(val.shape[1]),
        tau_all=seed_tau(val), tau_top=top_tau(val), vs_last=epoch_vs_last(val),
        median=float(np.nanmedian(mean)) * 100,
        within=float(np.nanmedian(np.nanstd(val[:, :, -1], axis=1))) * 100,
        between=float(np.nanstd(mean)) * 100,
        optimum=float(mean[ranked[0]]) * 100,
        optimum_test=float(np.nanmean(test[ranked[0], :, -1])) * 100,
        draws_top1=expected_draws(w, top), draws_optimum=expected_draws(w, best),
        cpu_hours=float(np.nansum(seconds[:, :, -1])) / 3600,
    )
