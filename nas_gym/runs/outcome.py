"""What one comparison run hands back, cut at its budget, and how it is read back from its folder.

A comparison run leaves its ordinary run folder plus ``protocol.json``: the budget it ran under
and the simulated clock after each evaluation. Everything reported (the returned architecture,
its test accuracy and regret, the anytime curves, the result when repeats are charged) is
recomputed from those two files by :func:`load_run`, so a leaderboard can be rebuilt, extended
with more seeds, or moved to another machine without rerunning a search.

Two accountings of the same run, both reported:

* **repeats free** (the default, what the evaluator charges): a repeated architecture is a cache
  hit and costs nothing, so an agent that keeps re-proposing known architectures may end long
  before its clock reaches the budget (``budget_used`` says how much it spent);
* **repeats charged** (NATS-Bench's, which has no cache): every query costs what the
  architecture's first evaluation cost, so the clock reaches the budget sooner and only the
  evaluations within it count (``*_charged`` columns).

With simulated parallel workers, an episode records ``sim_finish`` (the simulated moment its
result arrived): that is then the run's time, and only the repeats-free accounting applies. The
same holds for a multi-fidelity run (episodes with ``epochs``): taking an architecture to more
epochs pays only for the epochs it had not paid for, so charging a "repeat" its first cost would
mean nothing; a repeat there is a query of the same architecture at the same epochs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.errors import NasGymError
from nas_gym.runs.anytime import charged_clock
from nas_gym.runs.reference import Reference
from nas_gym.runs.runlog import EVALUATIONS_CSV, Record, best_of, read_rows, record_of
from nas_gym.spaces.base import SearchSpace
from nas_gym.storage.atomic import atomic_write_text

PROTOCOL_JSON = "protocol.json"
SIM_FINISH = "sim_finish"  # evaluations.csv column written by simulated parallel workers
CSV_COLUMNS = ("agent", "seed", "stopped_by", "evaluations", "distinct_archs", "repeats", "train_seconds", "budget_used",
               "arch", "val_acc", "reward", "cost", "within_target", "mean_val_acc", "test_acc", "regret", "reached_top",
               "evals_to_top", "distinct_to_top", "evaluations_charged", "test_acc_charged", "regret_charged", "mean_val_acc_charged",
               "time_source", "run_dir")


class ProtocolError(NasGymError, ValueError):
    """A run folder whose ``protocol.json`` is missing or damaged."""


@dataclass(frozen=True)
class RunResult:
    """One (agent, seed) run, cut at the budget.

    :param records: the evaluations that count, in order (within the seconds budget, if any).
    :param clock: the simulated time at which each of them finished.
    :param stopped_by: ``evaluations`` (played every episode) or ``seconds`` (clock past the budget).
    :param charged: the evaluations that count when every repeat is charged (None: not defined,
        without a seconds budget or with simulated parallel workers).
    :param budget_seconds: the seconds budget, if any.
    :param time_source: ``clock`` (the evaluator's charged seconds) or ``sim_finish``.
    """

    agent: str
    seed: int
    run_dir: Path
    records: tuple[Record, ...]
    clock: tuple[float, ...]
    stopped_by: str
    charged: tuple[Record, ...] | None = None
    budget_seconds: float | None = None
    time_source: str = "clock"

    @property
    def pick(self) -> Record | None:
        """The architecture the run hands back: its best by reward as it saw it."""
        return best_of(list(self.records))

    def curve(self, length: int) -> np.ndarray:
        """Best-so-far reward (the validation accuracy unless cost-aware) as the search saw it,
        after each evaluation, padded with its last value to ``length`` entries (failures count as 0)."""
        return best_so_far([r.reward if r.status == "ok" else 0.0 for r in self.records], length)

    def row(self, space: SearchSpace, ref: Reference | None) -> dict[str, str]:
        """The CSV row; a column nothing can fill is empty."""
        pick = self.pick
        row = dict.fromkeys(CSV_COLUMNS, "")
        archs = [space.parse(r.arch) for r in self.records]
        keys = [a.key() for a in archs]
        queries = set(zip(keys, (r.epochs for r in self.records), strict=True))  # the same architecture at more epochs is new
        spent = self.clock[-1] if self.clock else 0.0
        row.update(agent=self.agent, seed=str(self.seed), stopped_by=self.stopped_by, run_dir=str(self.run_dir),
                   evaluations=str(len(self.records)), distinct_archs=str(len(set(keys))),
                   repeats=str(len(keys) - len(queries)), train_seconds=f"{spent:.4f}", time_source=self.time_source)
        if self.budget_seconds:
            row["budget_used"] = f"{spent / self.budget_seconds:.4f}"
        if pick is not None:
            row.update(arch=pick.arch, val_acc=f"{pick.val_acc:.6f}", reward=f"{pick.reward:.6f}",
                       cost="" if pick.cost is None else f"{pick.cost:.10g}",
                       within_target="" if pick.within_target is None else str(int(pick.within_target)))
        if self.charged is not None:
            row["evaluations_charged"] = str(len(self.charged))
        if ref is None:
            return row
        for suffix, chosen in (("", pick), ("_charged", None if self.charged is None else best_of(list(self.charged)))):
            if chosen is not None:
                arch = space.parse(chosen.arch)
                mean_val, test = ref.value(arch), ref.test(arch) if ref.test is not None else None
                row[f"regret{suffix}"] = f"{ref.optimum - mean_val:.6f}"
                row[f"test_acc{suffix}"] = "" if test is None else f"{test:.6f}"
                row[f"mean_val_acc{suffix}"] = f"{mean_val:.6f}"
        hit = next((i for i, (r, a) in enumerate(zip(self.records, archs, strict=True))
                    if r.status == "ok" and ref.value(a) >= ref.threshold - 1e-12), None)
        row["reached_top"] = str(int(hit is not None))
        if hit is not None:
            row.update(evals_to_top=str(hit + 1), distinct_to_top=str(len(set(keys[:hit + 1]))))
        return row


def cut(records: list[Record], times: list[float], budget_seconds: float | None) -> tuple[list[int], str]:
    """The indices of the records that finished within the budget (all without one), and what
    stopped the run: ``seconds`` if any record finished past the budget, else ``evaluations``."""
    if budget_seconds is None:
        return list(range(len(records))), "evaluations"
    within = [i for i, t in enumerate(times) if t <= budget_seconds + 1e-9]
    return within, "seconds" if len(within) < len(records) else "evaluations"


def result_of(agent: str, seed: int, run_dir: Path, records: list[Record], clock: list[float],
              sim_finish: list[float] | None, budget_seconds: float | None, space: SearchSpace) -> RunResult:
    """A run's :class:`RunResult` from everything it recorded: ``clock`` the evaluator's charged
    seconds after each record (repeats free), ``sim_finish`` the simulated finishing moments if
    the run had simulated parallel workers."""
    n = min(len(records), len(clock)) if sim_finish is None else len(records)
    records, clock = records[:n], clock[:n]
    times = clock if sim_finish is None else sim_finish
    within, stopped = cut(records, times, budget_seconds)
    charged = None
    multi_fidelity = any(r.epochs is not None for r in records)  # a repeat there is a promotion, not a re-query
    if sim_finish is None and budget_seconds is not None and not multi_fidelity:
        paid = charged_clock([space.parse(r.arch).key() for r in records], clock)
        charged = tuple(r for r, t in zip(records, paid, strict=True) if t <= budget_seconds + 1e-9)
    return RunResult(agent, seed, run_dir, tuple(records[i] for i in within), tuple(float(times[i]) for i in within),
                     stopped, charged, budget_seconds, "clock" if sim_finish is None else SIM_FINISH)


def write_protocol(run_dir: Path, info: dict[str, Any]) -> None:
    """``protocol.json``: the budget the run ran under and its clock; written last, so a folder
    that has it is a finished comparison run."""
    atomic_write_text(run_dir / PROTOCOL_JSON, json.dumps(info, indent=1, sort_keys=True) + "\n")


def read_protocol(run_dir: Path) -> dict[str, Any]:
    path = run_dir / PROTOCOL_JSON
    try:
        info = json.loads(path.read_text())
        if not isinstance(info, dict) or not isinstance(info.get("clock"), list):
            raise ValueError("no clock")
        return info
    except (OSError, ValueError) as e:
        raise ProtocolError(f"{path} is missing or damaged ({type(e).__name__}); rerun that seed (delete its run "
                            "folder) or leave the folder out") from None


def load_run(run_dir: Path, space: SearchSpace) -> RunResult:
    """Read a finished comparison run back from its folder (``evaluations.csv`` and ``protocol.json``).

    :raises ProtocolError: ``protocol.json`` missing or damaged.
    """
    info = read_protocol(run_dir)
    rows = read_rows(run_dir / EVALUATIONS_CSV)
    records = [record_of(r) for r in rows]
    finish = [r.get(SIM_FINISH) or "" for r in rows]
    # One worker's simulated moments are the charged clock itself; only K > 1 workers replace it
    # (and only then does the repeats-charged accounting not apply).
    parallel = int(info.get("simulated_workers", 1) or 1) > 1
    sim = [float(v) for v in finish] if parallel and rows and all(finish) else None
    budget = info.get("budget_seconds")
    return result_of(str(info["agent"]), int(info["seed"]), run_dir, records, [float(c) for c in info["clock"]], sim,
                     None if budget is None else float(budget), space)


@dataclass(frozen=True)
class AgentSummary:
    """One agent over all seeds: its runs and their CSV rows.

    :param budget: evaluations per run (the planned number, with a seconds budget).
    """

    agent: str
    runs: tuple[RunResult, ...]
    rows: tuple[dict[str, str], ...]
    budget: int

    def column(self, name: str) -> list[float | None]:
        """One CSV column as numbers, None where it is empty."""
        return [float(r[name]) if r[name] != "" else None for r in self.rows]

    @property
    def curves(self) -> np.ndarray:
        """Best-so-far validation accuracy after each evaluation, one row per seed, padded to
        the longest run (or the budget of evaluations)."""
        length = max([self.budget, *(len(r.records) for r in self.runs)])
        return np.stack([r.curve(length) for r in self.runs])

    @property
    def regret(self) -> float | None:
        """Mean regret over seeds; None if the space's scores are unknown."""
        values = self.column("regret")
        return None if None in values else float(np.mean(values))

    @property
    def evals_to_top(self) -> list[int | None]:
        return [None if v is None else int(v) for v in self.column("evals_to_top")]

    def median_to_top(self, column: str = "evals_to_top") -> float:
        """Median over seeds, a seed that never reached the top counting as infinity: the
        median is finite only if at least half the seeds got there, and a mean over the
        lucky seeds alone would flatter an agent that mostly fails."""
        return float(np.median([math.inf if v is None else v for v in self.column(column)]))

    @property
    def reached_top(self) -> int:
        return sum(v == 1.0 for v in self.column("reached_top"))


def best_so_far(val_accs: list[float], budget: int) -> np.ndarray:
    """Running maximum, padded with its last value to ``budget`` entries (failures count as 0)."""
    curve = np.maximum.accumulate(np.asarray(val_accs or [0.0], dtype=float))
    if len(curve) < budget:
        curve = np.concatenate([curve, np.full(budget - len(curve), curve[-1])])
    return curve[:budget]
