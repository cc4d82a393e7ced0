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
import hashlib
import math
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from nas_gym.config import Config
from nas_gym.execution.gpus import claim_gpu, visible_gpus
from nas_gym.runs.outcome import (  # noqa: F401  (re-exported: the names callers import from here)
    CSV_COLUMNS,
    AgentSummary,
    RunResult,
    best_so_far,
    load_run,
    write_protocol,
)
from nas_gym.runs.recorder import SearchLog
from nas_gym.runs.reference import TOP_FRACTION, Reference, reference_for  # noqa: F401  (re-exported)
from nas_gym.runs.search import CHECKPOINT_SECONDS, StopSearch, run_search, safe_agent_name

DEFAULT_BUDGET = 100  # evaluations, when neither a count nor a table to derive one from is given
CAP_FACTOR = 5  # with a seconds budget: episodes allowed per planned evaluation (repeats are free)
CSV_NAME = "comparison.csv"
PNG_NAME = "comparison.png"



def simulated_workers(config: Config) -> int:
    """``evaluator.simulated_workers``: K workers on the simulated clock."""
    return config.evaluator.simulated_workers


class _Clock:
    """An ``on_episode`` hook: notes the evaluator's clock after each recorded evaluation and
    stops the run once it is past ``seconds`` times ``workers``. With one worker that is the
    budget itself; ``workers`` simulated workers can between them charge at most that many
    seconds before the simulated time passes the budget, and the run is then cut at the budget
    by each episode's ``sim_finish``."""

    def __init__(self, seconds: float | None, workers: int = 1) -> None:
        self.seconds = seconds
        self.workers = workers
        self.clock: list[float] = []

    def __call__(self, log: SearchLog) -> None:
        while len(self.clock) < len(log.records):  # an episode ended by a forbidden action adds no record
            self.clock.append(log.evaluator.stats.train_seconds)
        if self.seconds is not None and self.clock and self.clock[-1] > self.seconds * self.workers:
            raise StopSearch


def planned_evaluations(budget: int | None, budget_seconds: float | None, ref: Reference | None, workers: int = 1) -> int:
    """``budget`` if given; else, with a seconds budget and a table, how many architectures of
    average cost fit in it (on ``workers`` simulated workers at once); else ``DEFAULT_BUDGET``."""
    if budget is not None:
        return budget
    if budget_seconds is not None and ref is not None and ref.mean_seconds:
        return max(1, math.ceil(workers * budget_seconds / ref.mean_seconds))
    return DEFAULT_BUDGET


def benchmark_file(config: Config, kind: str | None = None) -> dict[str, str] | None:
    """The file that scores runs of evaluator ``kind`` without training (a table, a surrogate
    model): its name and sha256. Each comparison run records it, so a run made on one file is
    never read back as a run on another (a rebuilt table can keep its name and the budget)."""
    kind = kind or config.evaluator.kind
    if kind == "table":
        from nas_gym.evaluators.table import find_table

        path = find_table(config)
    elif kind == "surrogate":
        from nas_gym.evaluators.surrogate import find_model

        path = find_model(config)
    else:
        return None
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def run_one(config: Config, agent: str, seed: int, logdir: Path, budget: int, budget_seconds: float | None, *,
            evaluator: str | None = None, hparams: dict[str, Any] | None = None) -> RunResult:
    """One search at the budget: ``budget`` episodes, or until the clock passes ``budget_seconds``;
    its ``protocol.json`` written last, then the result read back as :func:`load_run` reads it."""
    workers = simulated_workers(config)
    clock = _Clock(budget_seconds, workers)
    cap = budget if budget_seconds is None else CAP_FACTOR * budget
    summary = run_search(config, agent, cap, seed, logdir, evaluator=evaluator, hparams=hparams, on_episode=clock,
                         checkpoint_seconds=CHECKPOINT_SECONDS, schedule_episodes=budget)
    write_protocol(summary.run_dir, {"agent": agent, "seed": seed, "budget_seconds": budget_seconds,
                                     "planned_evaluations": budget, "episode_cap": cap, "simulated_workers": workers,
                                     "evaluator": evaluator or config.evaluator.kind, "clock": clock.clock,
                                     "benchmark_file": benchmark_file(config, evaluator)})
    return load_run(summary.run_dir, config.search_space())


def _one_thread(parent: int | None = None, *, counter: Any = None, gpus: Sequence[str] = ()) -> None:
    """Worker initialiser: one torch thread per process, so ``workers`` processes share the cores
    instead of each spreading over all of them; the worker ends with ``parent``; with ``gpus``,
    the next GPU in turn, so the runs spread over the GPUs instead of all landing on ``cuda:0``
    (``nas_gym.gpus.claim_gpu``)."""
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
    planned = planned_evaluations(budget, budget_seconds, ref, simulated_workers(config))
    space = config.search_space()
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    jobs = [(agent, seed) for agent in agents for seed in seed_list]
    results = run_jobs(config, jobs, logdir, planned, budget_seconds, evaluator=evaluator, hparams=hparams,
                       workers=workers, on_run=on_run)
    summaries = []
    for agent in agents:
        runs = [results[agent, seed] for seed in seed_list]
        summaries.append(AgentSummary(agent, tuple(runs), tuple(r.row(space, ref) for r in runs), planned))
    write_csv(logdir / CSV_NAME, summaries)
    return summaries, ref


def run_jobs(config: Config, jobs: Sequence[tuple[str, int]], logdir: Path, planned: int, budget_seconds: float | None,
             *, evaluator: str | None = None, hparams: dict[str, dict[str, Any]] | None = None, workers: int = 1,
             on_run: Callable[[str, int], None] | None = None) -> dict[tuple[str, int], RunResult]:
    """Run each (agent, seed) of ``jobs`` with :func:`run_one` under ``logdir/<agent>/``, in
    ``workers`` spawned processes of one torch thread each (and, on a GPU host with device
    ``auto`` or ``cuda``, the GPUs dealt out in turn); ``on_run`` after each finished run."""
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
        return results
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
    return results


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
