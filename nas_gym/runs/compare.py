"""Comparing agents fairly: the same budget, several seeds, what each run would hand back.

Each (agent, seed) pair is an ordinary search (its own run folder, TensorBoard events and CSV);
this module reads back what each run recorded and reports, per run:

* the architecture it returns: its best by the reward it optimised *as the search saw it* (the
  validation accuracy unless the reward is cost-aware; with the table, one drawn training seed
  per architecture, so a lucky draw can win, as in a real search), with its reward, the cost the
  reward used and whether that is within the reward's target;
* that architecture's **test** accuracy, from the table (mean over the table's seeds), never shown
  to the search: NAS-Bench-201 reports this number;
* the **regret**: the table optimum's mean validation accuracy minus the returned architecture's
  mean validation accuracy. Defined on validation, not test, so that it is never negative and 0
  exactly when the run returned an optimum (the optimum by test accuracy is not what a search
  can aim at); the test accuracy column carries the test side;
* the evaluations and the distinct architectures it needed to reach the top 1% of the space by
  mean validation accuracy (the drawn seed's noise does not decide whether it got there);
* the simulated training seconds it was charged (``stats.train_seconds``; with the table, the
  recorded seconds of each distinct architecture, repeats free, as NAS-Bench-201 charges time).

Two budgets. ``evaluations``: every run plays that many episodes (cache hits count, so an agent
that proposes the same architecture twice pays twice in count, not in seconds). ``seconds``
(NATS-Bench's protocol): every run stops once its simulated clock passes the budget, and only
the evaluations that finished within it count; the one that crossed it would not have finished
in time. Agents do not know about this budget: an ``on_episode`` hook raises ``StopSearch``.
Their schedules (Q-learning's epsilon, DQN's exploration) are scaled to ``evaluations``, the
number they can plan for, by default the budget divided by the table's mean training seconds per
architecture; a run that keeps repeating cached architectures (free) stops anyway after
``CAP_FACTOR`` times that many episodes, and says so in ``stopped_by``.

Without a table (training, surrogate, proxy evaluators) the test accuracy, regret and top-1%
columns are empty: nothing knows the space's scores (with real training, the seconds budget counts
the trainer's own seconds). The synthetic evaluator knows them (no test
accuracy): its regret and top-1% columns are filled.
"""

from __future__ import annotations

import csv
import functools
import math
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.config import Config
from nas_gym.execution.gpus import claim_gpu, visible_gpus
from nas_gym.runs.recorder import SearchLog
from nas_gym.runs.runlog import Record, best_of, read_records
from nas_gym.runs.search import CHECKPOINT_SECONDS, StopSearch, run_search, safe_agent_name
from nas_gym.spaces.base import Architecture, SearchSpace

DEFAULT_BUDGET = 100  # evaluations, when neither a count nor a table to derive one from is given
CAP_FACTOR = 5  # with a seconds budget: episodes allowed per planned evaluation (repeats are free)
TOP_FRACTION = 0.01
CSV_NAME = "comparison.csv"
PNG_NAME = "comparison.png"
CSV_COLUMNS = ("agent", "seed", "stopped_by", "evaluations", "distinct_archs", "train_seconds", "arch", "val_acc",
               "reward", "cost", "within_target", "mean_val_acc", "test_acc", "regret", "reached_top", "evals_to_top", "distinct_to_top", "run_dir")


@dataclass(frozen=True)
class Reference:
    """What every architecture of the space scores, known without search: for reports only.

    :param scores: mean validation accuracy of every distinct architecture that trained.
    :param value: the mean validation accuracy of one architecture (0 for a failed one).
    :param test: its test accuracy (mean over the table's seeds), None without a table.
    :param optimum_test: test accuracy of the optimum by mean validation accuracy.
    :param best_test: the highest test accuracy in the table (an oracle no search can aim at).
    :param mean_seconds: mean simulated training seconds of one architecture (table only).
    """

    scores: np.ndarray
    value: Callable[[Architecture], float]
    test: Callable[[Architecture], float | None] | None = None
    optimum_test: float | None = None
    best_test: float | None = None
    mean_seconds: float | None = None

    @property
    def optimum(self) -> float:
        return float(self.scores.max())

    @property
    def threshold(self) -> float:
        """Mean validation accuracy at which the top ``TOP_FRACTION`` of the space starts."""
        return float(np.quantile(self.scores, 1.0 - TOP_FRACTION))


def reference_for(config: Config, evaluator_kind: str | None) -> Reference | None:
    """The table's numbers (mean over its seeds, or its fixed seed if ``evaluator.table_seed``
    names one), or the synthetic evaluator's scores; None for other evaluators."""
    from nas_gym.evaluators import make_evaluator
    from nas_gym.evaluators.table import TableEvaluator

    kind = evaluator_kind or config.evaluator.kind
    if kind not in ("table", "synthetic"):
        return None
    evaluator = make_evaluator(config, kind=kind)
    if isinstance(evaluator, TableEvaluator):
        results = evaluator.all_results()
        by_key = {a.key(): r.val_acc for a, r in zip(evaluator.table.archs, results, strict=True)}
        tests = [t for t in (evaluator.test_acc(a) for a in evaluator.table.archs) if t is not None]
        return Reference(np.array([r.val_acc for r in results if r.ok]), lambda a: by_key[a.key()],
                         evaluator.test_acc, evaluator.test_acc(evaluator.optimum()[0]), max(tests),
                         float(np.mean([r.train_seconds for r in results])))
    size = evaluator.space.size()
    if size is None or size > 200_000:
        return None
    return Reference(np.array([evaluator.score(a) for a in evaluator.space.enumerate()]), evaluator.score)


@dataclass(frozen=True)
class RunResult:
    """One (agent, seed) run, cut at the budget.

    :param records: the evaluations that count, in order (within the seconds budget, if any).
    :param clock: the simulated training seconds charged after each of them.
    :param stopped_by: ``evaluations`` (played every episode) or ``seconds`` (clock past the budget).
    """

    agent: str
    seed: int
    run_dir: Path
    records: tuple[Record, ...]
    clock: tuple[float, ...]
    stopped_by: str

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
        row.update(agent=self.agent, seed=str(self.seed), stopped_by=self.stopped_by, run_dir=str(self.run_dir),
                   evaluations=str(len(self.records)), distinct_archs=str(len(set(keys))),
                   train_seconds=f"{self.clock[-1] if self.clock else 0.0:.4f}")
        if pick is not None:
            row.update(arch=pick.arch, val_acc=f"{pick.val_acc:.6f}", reward=f"{pick.reward:.6f}",
                       cost="" if pick.cost is None else f"{pick.cost:.10g}",
                       within_target="" if pick.within_target is None else str(int(pick.within_target)))
        if ref is None:
            return row
        if pick is not None:
            arch = archs[self.records.index(pick)]
            mean_val, test = ref.value(arch), ref.test(arch) if ref.test is not None else None
            row.update(mean_val_acc=f"{mean_val:.6f}", regret=f"{ref.optimum - mean_val:.6f}",
                       test_acc="" if test is None else f"{test:.6f}")
        hit = next((i for i, (r, a) in enumerate(zip(self.records, archs, strict=True))
                    if r.status == "ok" and ref.value(a) >= ref.threshold - 1e-12), None)
        row["reached_top"] = str(int(hit is not None))
        if hit is not None:
            row.update(evals_to_top=str(hit + 1), distinct_to_top=str(len(set(keys[:hit + 1]))))
        return row


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


class _Clock:
    """An ``on_episode`` hook: notes the evaluator's clock after each recorded evaluation and
    stops the run once it is past ``seconds``."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.clock: list[float] = []

    def __call__(self, log: SearchLog) -> None:
        while len(self.clock) < len(log.records):  # an episode ended by a forbidden action adds no record
            self.clock.append(log.evaluator.stats.train_seconds)
        if self.seconds is not None and self.clock and self.clock[-1] > self.seconds:
            raise StopSearch


def planned_evaluations(budget: int | None, budget_seconds: float | None, ref: Reference | None) -> int:
    """``budget`` if given; else, with a seconds budget and a table, how many architectures of
    average cost fit in it; else ``DEFAULT_BUDGET``."""
    if budget is not None:
        return budget
    if budget_seconds is not None and ref is not None and ref.mean_seconds:
        return max(1, math.ceil(budget_seconds / ref.mean_seconds))
    return DEFAULT_BUDGET


def run_one(config: Config, agent: str, seed: int, logdir: Path, budget: int, budget_seconds: float | None, *,
            evaluator: str | None = None, hparams: dict[str, Any] | None = None) -> RunResult:
    """One search at the budget: ``budget`` episodes, or until the clock passes ``budget_seconds``."""
    clock = _Clock(budget_seconds)
    cap = budget if budget_seconds is None else CAP_FACTOR * budget
    summary = run_search(config, agent, cap, seed, logdir, evaluator=evaluator, hparams=hparams, on_episode=clock,
                         checkpoint_seconds=CHECKPOINT_SECONDS, schedule_episodes=budget)
    records = read_records(summary.run_dir)
    within = len(records) if budget_seconds is None else sum(c <= budget_seconds for c in clock.clock)
    stopped = "seconds" if within < len(records) else "evaluations"
    return RunResult(agent, seed, summary.run_dir, tuple(records[:within]), tuple(clock.clock[:within]), stopped)


def _one_thread(parent: int | None = None, *, counter: Any = None, gpus: Sequence[str] = ()) -> None:
    """Worker initialiser: one torch thread per process, so ``workers`` processes share the cores
    instead of each spreading over all of them; the worker ends with ``parent``; with ``gpus``,
    the next GPU in turn, so the runs spread over the GPUs instead of all landing on ``cuda:0``
    (``nas_gym.execution.gpus.claim_gpu``)."""
    if gpus:
        claim_gpu(counter, gpus)  # before torch touches CUDA
    import torch

    from nas_gym.execution.lifeline import die_with_parent

    die_with_parent(parent)

    torch.set_num_threads(1)


def run_comparison(config: Config, agents: list[str], budget: int | None, seeds: int | Sequence[int], logdir: Path, *,
                   evaluator: str | None = None, hparams: dict[str, dict[str, Any]] | None = None,
                   on_run: Callable[[str, int], None] | None = None, budget_seconds: float | None = None,
                   workers: int = 1, overwrite: bool = False) -> tuple[list[AgentSummary], Reference | None]:
    """Run every agent on the same seeds (``0..seeds-1``, or the given ones) at the same budget,
    write ``comparison.csv`` (one row per run) and return one summary per agent.

    :param budget: evaluations per run; with ``budget_seconds``, the evaluations agents plan
        for (None: see :func:`planned_evaluations`).
    :param budget_seconds: stop each run once its simulated training seconds pass this.
    :param workers: runs in parallel, each in its own spawned process with one torch thread (and,
        on a GPU host with device ``auto`` or ``cuda``, the GPUs dealt out in turn). Runs
        are independent searches (own seed, run folder and cache), so the results are the same as
        with ``workers=1``; only the order in which ``on_run`` is called differs.
    :param overwrite: replace an earlier comparison's ``comparison.csv`` and figure in ``logdir``;
        without it such a folder is refused before any run starts, so no result is lost.
    :raises ValueError: ``logdir`` holds an earlier comparison and ``overwrite`` is not set.
    """
    check_free(logdir, overwrite)
    made = [] if logdir.exists() else [logdir]
    try:
        return _run_all(config, agents, seeds, logdir, evaluator, hparams, on_run, budget, budget_seconds, workers)
    except BaseException:
        _remove_empty([*(logdir / safe_agent_name(a) for a in agents), *made])  # a run refused its set-up
        raise


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a comparison made before one of its runs refused its set-up (each run
    removes its own run folder then), if nothing else is in them."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty, or not there
            pass


def _run_all(config: Config, agents: list[str], seeds: int | Sequence[int], logdir: Path, evaluator: str | None,
             hparams: dict[str, dict[str, Any]] | None, on_run: Callable[[str, int], None] | None, budget: int | None,
             budget_seconds: float | None, workers: int) -> tuple[list[AgentSummary], Reference | None]:
    ref = reference_for(config, evaluator)
    planned = planned_evaluations(budget, budget_seconds, ref)
    space = config.search_space()
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    jobs = [(agent, seed) for agent in agents for seed in seed_list]
    results: dict[tuple[str, int], RunResult] = {}

    def job_args(agent: str, seed: int) -> tuple[Any, ...]:
        return (config, agent, seed, logdir / safe_agent_name(agent), planned, budget_seconds)

    def job_kwargs(agent: str) -> dict[str, Any]:
        return {"evaluator": evaluator, "hparams": (hparams or {}).get(agent)}

    if workers <= 1:
        for agent, seed in jobs:
            results[agent, seed] = run_one(*job_args(agent, seed), **job_kwargs(agent))
            if on_run is not None:
                on_run(agent, seed)
    else:
        context = multiprocessing.get_context("spawn")  # torch does not survive a fork
        device = config.runtime.device
        gpus = visible_gpus() if device in ("auto", "cuda") else []  # cuda:N pins every run to GPU N
        init = functools.partial(_one_thread, counter=context.Value("i", 0), gpus=gpus)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=init,
                                 initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(run_one, *job_args(a, s), **job_kwargs(a)): (a, s) for a, s in jobs}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if on_run is not None:
                    on_run(*futures[future])
    summaries = []
    for agent in agents:
        runs = [results[agent, seed] for seed in seed_list]
        summaries.append(AgentSummary(agent, tuple(runs), tuple(r.row(space, ref) for r in runs), planned))
    write_csv(logdir / CSV_NAME, summaries)
    return summaries, ref


def check_free(logdir: Path, overwrite: bool = False) -> None:
    """Refuse a ``logdir`` that already holds a comparison: a second one would replace its
    ``comparison.csv`` and PNG (the run folders themselves are never overwritten)."""
    earlier = [logdir / name for name in (CSV_NAME, PNG_NAME) if (logdir / name).exists()]
    if earlier and not overwrite:
        raise ValueError(f"--logdir {logdir} already holds a comparison ({earlier[0].name}); give another --logdir, "
                         "or --overwrite to replace it")


def write_csv(path: Path, summaries: list[AgentSummary]) -> None:
    """One row per (agent, seed), the columns of ``CSV_COLUMNS``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, CSV_COLUMNS)
        w.writeheader()
        w.writerows(row for s in summaries for row in s.rows)


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
