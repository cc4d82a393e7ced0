"""Comparing agents fairly: the same budget of evaluations, several seeds, one figure.

Each (agent, seed) pair is an ordinary search (its own run folder, TensorBoard events and CSV);
this module only reads their records back. Budget is counted in evaluations, cache hits
included, so an agent that proposes the same architecture twice pays twice, as it would if
nothing were cached.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.config import Config
from nas_gym.runlog import read_records
from nas_gym.search import CHECKPOINT_SECONDS, run_search


@dataclass(frozen=True)
class AgentSummary:
    """One agent over all seeds.

    :param curves: best-so-far validation accuracy after each evaluation, one row per seed.
    :param regret: mean over seeds of (optimum - best found); None if the optimum is unknown.
    :param evals_to_top: per seed, evaluations needed to reach the space's top fraction
        (None for a seed that never reached it).
    :param train_seconds: per seed, the training seconds the evaluator charged: with the table,
        the simulated clock (recorded training time of each distinct architecture, as
        NAS-Bench-201 charges it), so agents can also be compared by compute, not only by count.
    """

    agent: str
    curves: np.ndarray
    regret: float | None
    evals_to_top: list[int | None]
    train_seconds: tuple[float, ...] = ()

    @property
    def median_evals_to_top(self) -> float:
        """Median over seeds, a seed that never reached the top counting as infinity: the
        median is finite only if at least half the seeds got there, and a mean over the
        lucky seeds alone would flatter an agent that mostly fails."""
        return float(np.median([math.inf if n is None else n for n in self.evals_to_top]))

    @property
    def reached_top(self) -> int:
        return sum(n is not None for n in self.evals_to_top)


def reference_scores(config: Config, evaluator_kind: str | None) -> np.ndarray | None:
    """Validation accuracy of every architecture in the space, when it can be known for free:
    from the shipped table, or by scoring every architecture with the synthetic evaluator."""
    from nas_gym.evaluators import make_evaluator
    from nas_gym.evaluators.table import TableEvaluator

    kind = evaluator_kind or config.evaluator.kind
    if kind not in ("table", "synthetic"):
        return None
    evaluator = make_evaluator(config, kind=kind)
    if isinstance(evaluator, TableEvaluator):
        return np.array([r.val_acc for r in evaluator.all_results() if r.ok])
    if config.search_space().size() > 200_000:
        return None
    return np.array([evaluator.score(a) for a in evaluator.space.enumerate()])


def best_so_far(val_accs: list[float], budget: int) -> np.ndarray:
    """Running maximum, padded with its last value to ``budget`` entries (failures count as 0)."""
    curve = np.maximum.accumulate(np.asarray(val_accs or [0.0], dtype=float))
    if len(curve) < budget:
        curve = np.concatenate([curve, np.full(budget - len(curve), curve[-1])])
    return curve[:budget]


def summarise(agent: str, runs: list[list[float]], budget: int, scores: np.ndarray | None,
              top_fraction: float = 0.01) -> AgentSummary:
    curves = np.stack([best_so_far(r, budget) for r in runs])
    regret, to_top = None, [None] * len(runs)
    if scores is not None and len(scores):
        optimum = float(scores.max())
        threshold = float(np.quantile(scores, 1.0 - top_fraction))
        regret = float(np.mean(optimum - curves[:, -1]))
        to_top = [int(np.argmax(c >= threshold - 1e-12)) + 1 if (c >= threshold - 1e-12).any() else None
                  for c in curves]
    return AgentSummary(agent, curves, regret, to_top)


def run_comparison(config: Config, agents: list[str], budget: int, seeds: int, logdir: Path, *,
                   evaluator: str | None = None, hparams: dict[str, dict[str, Any]] | None = None,
                   on_run: Callable[[str, int], None] | None = None) -> tuple[list[AgentSummary], np.ndarray | None]:
    """Run every agent for ``budget`` evaluations on seeds 0..seeds-1 and summarise."""
    scores = reference_scores(config, evaluator)
    summaries = []
    for agent in agents:
        runs, seconds = [], []
        for seed in range(seeds):
            summary = run_search(config, agent, budget, seed, logdir / agent, evaluator=evaluator,
                                 hparams=(hparams or {}).get(agent), checkpoint_seconds=CHECKPOINT_SECONDS)
            runs.append([r.val_acc if r.status == "ok" else 0.0 for r in read_records(summary.run_dir)])
            seconds.append(summary.stats.train_seconds)
            if on_run is not None:
                on_run(agent, seed)
        summaries.append(replace(summarise(agent, runs, budget, scores), train_seconds=tuple(seconds)))
    write_csv(logdir / "comparison.csv", summaries)
    return summaries, scores


def write_csv(path: Path, summaries: list[AgentSummary]) -> None:
    """Long format: agent, seed, evaluation, best_so_far."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["agent", "seed", "evaluation", "best_val_acc"])
        for s in summaries:
            for seed, curve in enumerate(s.curves):
                w.writerows([s.agent, seed, i + 1, f"{v:.6f}"] for i, v in enumerate(curve))


def plot(summaries: list[AgentSummary], path: Path, optimum: float | None = None, title: str = "") -> Path:
    """Best-so-far validation accuracy against evaluations: mean and a 95% confidence band
    (1.96 standard errors over seeds) per agent; the space's optimum as a dashed line."""
    from nas_gym.figures import new_figure, save_figure

    fig = new_figure((8, 5))
    ax = fig.subplots()
    for s in summaries:
        x = np.arange(1, s.curves.shape[1] + 1)
        mean = s.curves.mean(axis=0)
        half = 1.96 * s.curves.std(axis=0, ddof=1) / math.sqrt(len(s.curves)) if len(s.curves) > 1 else 0 * mean
        ax.plot(x, mean, label=s.agent)
        ax.fill_between(x, mean - half, mean + half, alpha=0.2)
    if optimum is not None:
        ax.axhline(optimum, color="black", linestyle="--", linewidth=1, label="optimum")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    save_figure(fig, path)
    return path


def table_rows(summaries: list[AgentSummary], baseline: str = "random") -> list[dict[str, str]]:
    """Printable rows: final best (mean), regret, median evaluations to the top 1% and its ratio
    to random search's (below 1: fewer evaluations than random search needs)."""
    base = next((s.median_evals_to_top for s in summaries if s.agent == baseline), math.inf)
    rows = []
    for s in summaries:
        n, budget = s.median_evals_to_top, s.curves.shape[1]
        known = s.regret is not None
        rows.append({
            "agent": s.agent,
            "final best val acc": f"{s.curves[:, -1].mean():.4f}",
            "mean regret": f"{s.regret:.4f}" if known else "-",
            "median evals to top 1%": ("-" if not known else f"> {budget}" if math.isinf(n) else f"{n:.0f}")
            + (f" ({s.reached_top}/{len(s.evals_to_top)} seeds)" if known else ""),
            "vs random": f"{n / base:.2f}x" if known and math.isfinite(n) and math.isfinite(base) else "-",
            "train s / run": f"{np.mean(s.train_seconds):.0f}" if s.train_seconds else "-",
        })
    return rows
