"""Anytime curves: what an agent would hand back if it were stopped at each point of simulated time.

A final number at one budget hides when an agent got there: one that finds a good architecture
early and one that finds it on the last evaluation tie. NATS-Bench plots, over the simulated
training time, the test accuracy of the architecture each search would return at that moment;
this module computes those curves from what runs recorded, with no search and no torch, so they
can be unit-tested on hand-made runs and recomputed from run folders.

* **Time** is the simulated clock: the evaluator's charged training seconds after each
  evaluation (cumulative), or, when an episode records ``sim_finish`` (simulated parallel
  workers), the simulated moment its result arrived. Records need not arrive in time order.
* **The incumbent** at time ``t`` is the best record by reward (validation accuracy unless the
  reward is cost-aware) among those finished by ``t``; the first of equal ones wins, as
  :func:`nas_gym.runs.runlog.best_of` picks. Failures never become incumbents. In a
  multi-fidelity run only results at the highest fidelity reached by ``t`` compete
  (:meth:`nas_gym.runs.runlog.Record.beats`).
* **The value** at ``t`` is a number of the incumbent: its test accuracy (table), its regret, or
  the validation accuracy the search saw. Before the first result there is none (NaN).
* **Over seeds**: median and quartiles on one common grid, over the runs that have a value there.

Also here: the clock when every repeat is charged (:func:`charged_clock`). Caches make a repeated
architecture free; NATS-Bench has no cache and charges every query. Both clocks come from the
same run, since charging repeats only makes the clock run faster.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from nas_gym.runs.runlog import Record

GRID_POINTS = 50
METRIC_LABELS = {"test_acc": "test accuracy of the incumbent", "regret": "regret of the incumbent (mean val points)",
                 "val_acc": "best validation accuracy seen", "mean_val_acc": "mean validation accuracy of the incumbent"}


def time_grid(budget: float, points: int = GRID_POINTS) -> np.ndarray:
    """``points`` equally spaced moments in ``(0, budget]``, the budget itself the last: one
    grid for every agent, so their curves can be read off at the same times."""
    if not budget > 0 or points < 1:
        raise ValueError(f"need a budget > 0 and at least one grid point, got {budget} and {points}")
    return budget * np.arange(1, points + 1) / points


def incumbent_at(records: Sequence[Record], times: Sequence[float], grid: Sequence[float]) -> list[int | None]:
    """For each moment of ``grid``, the index (into ``records``) of the incumbent then: the best
    by reward among the records finished by that moment (None before the first success)."""
    if len(records) != len(times):
        raise ValueError(f"{len(records)} records but {len(times)} times")
    order = sorted(range(len(records)), key=lambda i: (times[i], i))  # arrival order; ties keep record order
    arrival = np.array([times[i] for i in order], dtype=float)
    best: int | None = None
    incumbent: list[int | None] = []  # after each arrival
    for i in order:
        r = records[i]
        if r.beats(None if best is None else records[best]):
            best = i
        incumbent.append(best)
    out: list[int | None] = []
    for t in grid:
        k = int(np.searchsorted(arrival, t + 1e-9, side="right"))  # the tolerance absorbs float sums of seconds
        out.append(incumbent[k - 1] if k > 0 else None)
    return out


def curve(records: Sequence[Record], times: Sequence[float], grid: Sequence[float],
          value: Callable[[Record], float | None]) -> np.ndarray:
    """``value`` of the incumbent at each moment of ``grid``; NaN where there is none yet (or
    ``value`` gives None)."""
    out = np.full(len(grid), np.nan)
    cache: dict[int, float | None] = {}
    for j, i in enumerate(incumbent_at(records, times, grid)):
        if i is not None:
            if i not in cache:
                cache[i] = value(records[i])
            if cache[i] is not None:
                out[j] = cache[i]
    return out


def quartiles(curves: np.ndarray) -> dict[str, np.ndarray]:
    """Per grid point, over the runs (rows) that have a value there: 25th percentile, median,
    75th percentile (NaN where none has), and how many runs have one."""
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    known = ~np.isnan(curves)
    n = known.sum(axis=0)
    out = {name: np.full(curves.shape[1], np.nan) for name in ("q25", "median", "q75")}
    for j in np.flatnonzero(n):
        column = curves[known[:, j], j]
        out["q25"][j], out["median"][j], out["q75"][j] = np.percentile(column, [25, 50, 75])
    return {**out, "runs": n}


def charged_clock(keys: Sequence[str], clock: Sequence[float]) -> np.ndarray:
    """The clock after each record when every repeat is charged what its first evaluation cost.

    :param keys: each record's architecture key (equal keys: the same architecture, a cache hit).
    :param clock: the charged seconds after each record with repeats free (cumulative, serial).
    """
    if len(keys) != len(clock):
        raise ValueError(f"{len(keys)} keys but {len(clock)} clock readings")
    first_cost: dict[str, float] = {}
    spent, out, before = 0.0, [], 0.0
    for key, now in zip(keys, clock, strict=True):
        step = float(now) - before
        before = float(now)
        cost = first_cost.setdefault(key, step)  # a repeat's own step is 0: the cache answered it
        spent += cost
        out.append(spent)
    return np.array(out)


CSV_FIELDS = ("agent", "metric", "seconds", "runs", "q25", "median", "q75")


def curve_rows(curves: Mapping[str, Mapping[str, np.ndarray]], grid: Sequence[float]) -> list[dict[str, str]]:
    """CSV rows, agent by agent and metric by metric: the quartiles over seeds at each moment.

    :param curves: agent -> metric -> one curve per seed (rows) on ``grid``.
    """
    rows = []
    for agent, metrics in curves.items():
        for metric, values in metrics.items():
            q = quartiles(values)
            for j, t in enumerate(grid):
                rows.append({"agent": agent, "metric": metric, "seconds": f"{t:.6g}", "runs": str(int(q["runs"][j])),
                             **{k: "" if np.isnan(q[k][j]) else f"{q[k][j]:.6f}" for k in ("q25", "median", "q75")}})
    return rows


def write_curves_csv(path: Path, curves: Mapping[str, Mapping[str, np.ndarray]], grid: Sequence[float]) -> Path:
    """The quartile curves of :func:`curve_rows` as a CSV (one row per agent, metric and moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(curve_rows(curves, grid))
    return path


def plot_curves(curves: Mapping[str, Mapping[str, np.ndarray]], grid: Sequence[float], path: Path, title: str = "",
                metrics: Sequence[str] = ("test_acc", "regret")) -> Path:
    """:func:`plot_quartiles` of per-seed curves (agent -> metric -> one row per seed)."""
    return plot_quartiles({a: {m: quartiles(c) for m, c in by.items()} for a, by in curves.items()}, grid, path, title,
                          metrics)


def plot_quartiles(bands: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]], grid: Sequence[float], path: Path,
                   title: str = "", metrics: Sequence[str] = ("test_acc", "regret")) -> Path:
    """One panel per metric: each agent's median over seeds against simulated seconds, the band
    between the quartiles. Metrics no agent has (no table: no test accuracy) are left out; with
    none of ``metrics``, the validation accuracy the searches saw.

    :param bands: agent -> metric -> ``q25``, ``median``, ``q75`` on ``grid`` (NaN: no value yet).
    """
    from nas_gym.runs.figures import new_figure, save_figure

    def has(by: Mapping[str, Mapping[str, Sequence[float]]], m: str) -> bool:
        return m in by and not np.isnan(np.asarray(by[m]["median"], dtype=float)).all()

    shown = [m for m in metrics if any(has(by, m) for by in bands.values())] or ["val_acc"]
    fig = new_figure((6 * len(shown), 4.5))
    axes = np.atleast_1d(fig.subplots(1, len(shown)))
    x = np.asarray(grid, dtype=float)
    for ax, metric in zip(axes, shown, strict=True):
        for agent, by_metric in bands.items():
            if metric not in by_metric:
                continue
            q = {k: 100.0 * np.asarray(by_metric[metric][k], dtype=float) for k in ("q25", "median", "q75")}
            ax.plot(x, q["median"], label=agent)
            ax.fill_between(x, q["q25"], q["q75"], alpha=0.15)
        ax.set_xlabel("simulated training seconds")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric) + ("" if metric == "regret" else " (%)"))
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    return path
