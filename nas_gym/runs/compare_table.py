"""How a comparison reads: the printed table, the figure by evaluations, the tests against random
search, and each agent's anytime curves.

Kept apart from the runs (``nas_gym.runs.compare``) so that reading and drawing never start a
search, and from the curves over simulated time (``nas_gym.runs.anytime``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from nas_gym.runs.anytime import curve
from nas_gym.runs.outcome import AgentSummary
from nas_gym.runs.reference import Reference
from nas_gym.spaces.base import SearchSpace

TESTS_CSV = "tests.csv"
TESTS_COLUMNS = ("agent", "runs", "mean", "median", "p_mwu", "p_holm")


def plot(summaries: list[AgentSummary], path: Path, optimum: float | None = None, title: str = "") -> Path:
    """Best-so-far reward (as the searches saw it; the validation accuracy unless the reward is
    cost-aware) against evaluations: mean and a
    95% confidence band (1.96 standard errors over seeds) per agent; the optimum dashed."""
    from nas_gym.runs.figures import new_figure, save_figure

    fig = new_figure((8, 5))
    ax = fig.subplots()
    for s in summaries:
        curves = s.curves
        x = np.arange(1, curves.shape[1] + 1)
        mean = curves.mean(axis=0)
        half = 1.96 * curves.std(axis=0, ddof=1) / math.sqrt(len(curves)) if len(curves) > 1 else 0 * mean
        ax.plot(x, mean, label=s.agent)
        ax.fill_between(x, mean - half, mean + half, alpha=0.2)
    if optimum is not None:
        ax.axhline(optimum, color="black", linestyle="--", linewidth=1, label="optimum (mean val)")
    ax.set_xlabel("evaluations")
    cost_aware = any(r["within_target"] != "" for s in summaries for r in s.rows)
    ax.set_ylabel("best reward so far" if cost_aware else "best validation accuracy so far")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    save_figure(fig, path)
    return path


def mean_std(values: list[float | None], digits: int = 4) -> str:
    """``mean ± std`` over seeds (sample std), ``-`` when the column is empty."""
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    std = float(np.std(known, ddof=1)) if len(known) > 1 else 0.0
    return f"{np.mean(known):.{digits}f} ± {std:.{digits}f}"


def table_rows(summaries: list[AgentSummary]) -> list[dict[str, str]]:
    """Printable rows, mean ± std over seeds; the evaluations to the top 1% as medians (see
    :meth:`AgentSummary.median_to_top`) with the number of seeds that got there; with random
    search among the agents and a test accuracy per seed, each agent's Mann-Whitney p-value
    against it, uncorrected and Holm-corrected over the comparisons (``nas_gym.runs.stats``)."""
    from nas_gym.runs.stats import against, fmt_p

    tests = {s.agent: [v for v in s.column("test_acc") if v is not None] for s in summaries}
    vs_random = against("random", tests) if "random" in tests and all(len(v) >= 2 for v in tests.values()) else {}
    rows = []
    for s in summaries:
        known = s.rows[0]["reached_top"] != ""

        def to_top(column: str, s: AgentSummary = s, known: bool = known) -> str:
            n = s.median_to_top(column)
            return "-" if not known else ("> budget" if math.isinf(n) else f"{n:.0f}") + f" [{s.reached_top}/{len(s.runs)}]"

        rows.append({
            "agent": s.agent,
            "test acc of pick": mean_std(s.column("test_acc")),
            "regret (mean val)": mean_std(s.column("regret")),
            "evals to top 1%": to_top("evals_to_top"),
            "distinct to top 1%": to_top("distinct_to_top"),
            "evals": mean_std(s.column("evaluations"), 1),
            "train s": mean_std(s.column("train_seconds"), 1),
        })
        if vs_random:
            rows[-1]["p vs random (MWU / Holm)"] = " / ".join(fmt_p(p) for p in vs_random[s.agent]) if s.agent in vs_random else ""
        within = [r["within_target"] for r in s.rows if r["within_target"] != ""]
        if within:  # a cost-aware reward: the pick's reward, and how many picks meet the target
            rows[-1]["reward of pick"] = mean_std(s.column("reward"))
            rows[-1]["pick within target"] = f"{within.count('1')}/{len(s.rows)}"
    return rows


def holm_rows(summaries: list[AgentSummary], column: str = "test_acc", baseline: str = "random") -> list[dict[str, str]]:
    """Each agent's ``column`` over seeds against ``baseline``'s: a two-sided Mann-Whitney U test
    (unpaired: it compares the two sets of final values, not seed with seed) with its uncorrected
    p-value and the Holm-corrected one over the family of every agent against ``baseline``
    (``nas_gym.stats.against``). Empty p-values where either side has fewer than two values."""
    from nas_gym.runs.stats import against

    samples = {s.agent: [v for v in s.column(column) if v is not None] for s in summaries}
    known = {a: v for a, v in samples.items() if len(v) >= 2}
    tested = against(baseline, known) if baseline in known and len(known) > 1 else {}
    rows = []
    for agent, values in samples.items():
        p = tested.get(agent)
        rows.append({"agent": agent, "runs": str(len(values)),
                     "mean": f"{np.mean(values):.6f}" if values else "", "median": f"{np.median(values):.6f}" if values else "",
                     "p_mwu": "" if p is None else f"{p[0]:.6g}", "p_holm": "" if p is None else f"{p[1]:.6g}"})
    return rows


def write_holm_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, TESTS_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def agent_curves(summaries: list[AgentSummary], space: SearchSpace, ref: Reference | None,
                 grid: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Per agent and metric, one anytime curve per seed on ``grid`` (``nas_gym.runs.anytime``):
    the incumbent's test accuracy and regret when ``ref`` knows them, and always the validation
    accuracy the search saw (its reward's accuracy)."""
    metrics = {"val_acc": lambda r: r.val_acc}
    if ref is not None:
        metrics["regret"] = lambda r: ref.optimum - ref.value(space.parse(r.arch))
        if ref.test is not None:
            test = ref.test
            metrics["test_acc"] = lambda r: test(space.parse(r.arch))
    return {s.agent: {m: np.stack([curve(list(run.records), list(run.clock), grid, f) for run in s.runs])
                      for m, f in metrics.items()} for s in summaries}
