"""The agents' leaderboard: every agent's anytime and final results per benchmark, from run folders.

A benchmark is a preset with a fixed evaluator (a shipped table, or the surrogate). Every agent
runs on the same seeds at the same simulated-time budget (``nas_gym.runs.compare.run_one``); each
finished run leaves ``protocol.json`` beside its ``evaluations.csv``, and this module reads those
back, so the board grows one seed or one agent at a time and is rebuilt from the runs alone.

What a board section holds (JSON-ready, every float rounded, so the same runs give the same bytes):
the conditions (preset, evaluator, budget, workers, the benchmark file and its sha256), per agent
the per-seed final values (the returned architecture's test accuracy and regret, the share of the
budget used, repeats, and the same numbers when repeats are charged), the Mann-Whitney p-values
against random search with their Holm correction, and the anytime quartiles on the common grid.
Per-seed values are kept so a user's agent can be tested against the board without rerunning
the built-in agents (``scripts/make_leaderboard.py --against``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.config import Config, load_config
from nas_gym.errors import NasGymError
from nas_gym.runs.anytime import curve, quartiles, time_grid
from nas_gym.runs.compare import benchmark_file
from nas_gym.runs.compare_table import agent_curves
from nas_gym.runs.outcome import PROTOCOL_JSON, AgentSummary, ProtocolError, RunResult, load_run, read_protocol
from nas_gym.runs.reference import Reference
from nas_gym.runs.runlog import best_of
from nas_gym.spaces.base import Architecture, SearchSpace

BUDGET_ARCHS = 200  # default budget: this many architectures of the benchmark's mean training seconds
PER_SEED = ("test_acc", "regret", "mean_val_acc", "val_acc", "budget_used", "repeats", "evaluations", "distinct_archs",
            "test_acc_charged", "regret_charged", "mean_val_acc_charged", "evaluations_charged", "reached_top", "evals_to_top")
ANYTIME_AT = (0.1, 0.2, 0.5, 1.0)  # fractions of the budget the page's table reads the curves at


class BoardError(NasGymError, ValueError):
    """A benchmark name, run set or earlier board that cannot be used; one line with the fix."""


@dataclass(frozen=True)
class Benchmark:
    """A preset and the evaluator that scores it without training."""

    name: str
    preset: str
    evaluator: str
    about: str
    budget_archs: int = BUDGET_ARCHS  # the default budget: this many architectures of average cost


BENCHMARKS = {b.name: b for b in (
    Benchmark("mnist1d-tiny", "mnist1d-tiny", "table", "layer chain on MNIST-1D, shipped table"),
    Benchmark("mnist1d-cell", "mnist1d-cell", "table", "NAS-Bench-201-style cell on MNIST-1D, shipped table"),
    Benchmark("mnist1d-surrogate", "mnist1d", "surrogate", "layer chain on MNIST-1D (2.78 million), surrogate model"),
    Benchmark("mnist1d-noisy-cell", "mnist1d-noisy-cell", "table", "NAS-Bench-201-style cell on a harder "
              "20,000-signal MNIST-1D, 3 seeds and 3-epoch learning curves per cell, shipped table"),
    # 76 chains: a budget of 200 full trainings would cover the space twice over
    Benchmark("mf-chain", "mf-chain", "table", "layer chain on MNIST-1D with 8-epoch learning curves (76 chains), "
              "shipped table: multi-fidelity agents pay only for the epochs they use", budget_archs=20),
)}


def benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise BoardError(f"--benchmarks: unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def bench_config(bench: Benchmark, overrides: Mapping[str, Any] | None = None) -> Config:
    return load_config(bench.preset, {**(overrides or {}), "evaluator.kind": bench.evaluator})


def identity(config: Config, bench: Benchmark) -> dict[str, Any]:
    """Which benchmark file scored the runs: its name, sha256 and, for a table, its format (a
    rebuilt table or refitted surrogate is another benchmark, and its results do not mix)."""
    scored = benchmark_file(config, bench.evaluator)
    assert scored is not None  # a benchmark's evaluator is a table or the surrogate
    if bench.evaluator != "table":
        return scored
    from nas_gym.benchmarks.table_file import read_header
    from nas_gym.evaluators.table import find_table

    header = read_header(find_table(config))
    return {**scored, "format_version": header.get("format_version"), "trainer_version": header.get("trainer_version", 1)}


def mean_seconds(config: Config, bench: Benchmark, ref: Reference | None, sample: int = 1000) -> float:
    """Mean simulated training seconds of one architecture: the table's over every row; the
    surrogate's predicted seconds over ``sample`` architectures drawn with a fixed seed."""
    if ref is not None and ref.mean_seconds:
        return float(ref.mean_seconds)
    from nas_gym.evaluators.surrogate import SurrogateEvaluator

    evaluator = SurrogateEvaluator(config)
    rng = np.random.default_rng(0)
    archs = [evaluator.space.sample(rng) for _ in range(sample)]
    _, seconds = evaluator.model.predict(np.stack([evaluator.space.features(a) for a in archs]))
    return float(np.mean(seconds))


def surrogate_mean(config: Config) -> Callable[[Architecture], float]:
    """The surrogate's noise-free mean validation accuracy of an architecture: what its noisy
    draws scatter around, and what a returned architecture is judged by where no table exists."""
    from nas_gym.evaluators.surrogate import SurrogateEvaluator

    evaluator = SurrogateEvaluator(config)

    def mean(arch: Architecture) -> float:
        return float(evaluator.model.predict(evaluator.space.features(arch)[None, :])[0][0])

    return mean


def default_budget(seconds_per_arch: float, archs: int = BUDGET_ARCHS) -> float:
    """``archs`` architectures of average cost, rounded to 0.1 s."""
    return round(archs * seconds_per_arch, 1)


def find_runs(folder: Path, space: SearchSpace, budget_seconds: float,
              scored_by: Mapping[str, str] | None = None) -> tuple[dict[str, dict[int, RunResult]], int]:
    """The finished runs under ``folder`` (those with ``protocol.json``) at ``budget_seconds``, by
    agent and seed (of two runs of one seed, the first by path), and how many other finished runs
    were left out for another budget or, with ``scored_by`` (:func:`benchmark_file`), another
    benchmark file. A run from before runs recorded their file is taken on its budget alone."""
    found: dict[str, dict[int, RunResult]] = {}
    other = 0
    for path in sorted(folder.glob(f"**/{PROTOCOL_JSON}")) if folder.is_dir() else []:
        try:  # the protocol decides; only a matching run's evaluations are read
            info = read_protocol(path.parent)
            budget, recorded = info.get("budget_seconds"), info.get("benchmark_file")
            if budget is None or abs(float(budget) - budget_seconds) > 1e-9 or (
                    scored_by is not None and isinstance(recorded, dict) and recorded.get("sha256") != scored_by.get("sha256")):
                other += 1
                continue
            run = load_run(path.parent, space)
        except (ProtocolError, TypeError, ValueError):
            continue
        found.setdefault(run.agent, {}).setdefault(run.seed, run)
    return found, other


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def agent_entry(summary: AgentSummary, bands: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """One agent's part of a section: per-seed values and anytime quartiles."""
    per_seed = {c: [_r(v) for v in summary.column(c)] for c in PER_SEED}
    anytime = {}
    for metric, curves in bands.items():
        q = quartiles(curves)
        anytime[metric] = {k: [_r(v) for v in q[k]] for k in ("q25", "median", "q75")} | {
            "runs": [int(n) for n in q["runs"]]}
    return {"seeds": [r.seed for r in summary.runs], "per_seed": per_seed,
            "stopped_by_seconds": sum(r.stopped_by == "seconds" for r in summary.runs), "anytime": anytime}


def section_from_runs(runs: Mapping[str, Mapping[int, RunResult]], agents: Sequence[str], space: SearchSpace,
                      ref: Reference | None, budget_seconds: float, planned: int,
                      mean_value: Callable[[Architecture], float] | None = None) -> dict[str, dict[str, Any]]:
    """Per agent (in ``agents`` order, then any other agent found, by name), its entry.

    :param mean_value: without a table, the benchmark's noise-free mean validation accuracy of an
        architecture (the surrogate's): filled in as ``mean_val_acc``, per seed and anytime.
    """
    order = [a for a in agents if a in runs] + sorted(a for a in runs if a not in agents)
    grid = time_grid(budget_seconds)
    entries = {}
    for agent in order:
        seeds = sorted(runs[agent])
        chosen = [runs[agent][s] for s in seeds]
        rows = [r.row(space, ref) for r in chosen]
        bands = agent_curves([AgentSummary(agent, tuple(chosen), tuple(rows), planned)], space, ref, grid)[agent]
        if mean_value is not None and ref is None:
            for run, row in zip(chosen, rows, strict=True):
                row["mean_val_acc"] = "" if run.pick is None else f"{mean_value(space.parse(run.pick.arch)):.6f}"
                paid = None if run.charged is None else best_of(list(run.charged))
                row["mean_val_acc_charged"] = "" if paid is None else f"{mean_value(space.parse(paid.arch)):.6f}"
            bands["mean_val_acc"] = np.stack([curve(list(r.records), list(r.clock), grid,
                                                    lambda rec: mean_value(space.parse(rec.arch))) for r in chosen])
        entries[agent] = agent_entry(AgentSummary(agent, tuple(chosen), tuple(rows), planned), bands)
    return entries


def primary(section: Mapping[str, Any]) -> str:
    """The final value agents are ranked and tested on: the test accuracy when the benchmark has
    it; else the noise-free mean validation accuracy (surrogate); else what the search saw."""
    if section["conditions"]["has_test"]:
        return "test_acc"
    return "mean_val_acc" if section["conditions"].get("has_mean") else "val_acc"


def add_tests(section: dict[str, Any], baseline: str = "random") -> None:
    """Every agent's primary per-seed values against ``baseline``'s, two-sided Mann-Whitney U
    (unpaired), with Holm's correction over the family of these comparisons; both p-values kept."""
    from nas_gym.runs.stats import against

    metric = primary(section)
    samples = {a: [v for v in e["per_seed"][metric] if v is not None] for a, e in section["agents"].items()}
    samples = {a: v for a, v in samples.items() if len(v) >= 2}
    tested = against(baseline, samples) if baseline in samples and len(samples) > 1 else {}
    for agent, entry in section["agents"].items():
        p = tested.get(agent)
        entry["p_mwu_vs_random"] = None if p is None else _r(p[0], 8)
        entry["p_holm_vs_random"] = None if p is None else _r(p[1], 8)


def section_key(bench: str, overrides: Mapping[str, Any]) -> str:
    """A board section per benchmark and set of config overrides (e.g. simulated workers)."""
    extra = ",".join(f"{k}={overrides[k]}" for k in sorted(overrides))
    return bench if not extra else f"{bench} [{extra}]"


def check_against(conditions: Mapping[str, Any], earlier: Mapping[str, Any] | None) -> None:
    """Refuse to compare with a published section made under other conditions.

    :raises BoardError: the budget, benchmark file, workers or overrides differ.
    """
    if earlier is None:
        return
    theirs = earlier["conditions"]
    for key in ("budget_seconds", "benchmark_file", "simulated_workers", "overrides"):
        if conditions.get(key) != theirs.get(key):
            raise BoardError(f"--against: its {key} is {theirs.get(key)!r}, these runs' is {conditions.get(key)!r}; "
                             "compare at the board's conditions (same --budget-seconds, table and --set)")


def merge_against(section: dict[str, Any], earlier: Mapping[str, Any] | None) -> list[str]:
    """Add to ``section`` the agents of ``earlier`` (the same section of a published board) that
    it lacks, after :func:`check_against`. Returns the agents taken."""
    if earlier is None:
        return []
    check_against(section["conditions"], earlier)
    taken = [a for a in earlier["agents"] if a not in section["agents"]]
    for agent in taken:
        section["agents"][agent] = earlier["agents"][agent]
    return taken
