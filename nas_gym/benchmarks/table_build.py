"""Building the tabular benchmark: every architecture of a preset's space, trained once per seed
(``scripts/build_table.py`` is its command line).

Each architecture is trained once per seed by ``nas_gym.training.train.evaluate_seeds`` (all seeds in one
pass, each member exactly what ``evaluate_architecture`` with ``train.seed = seed`` gives, up to
float rounding) with the preset's trainer, on the CPU with one torch thread per worker
(bit-reproducible, and on 2 cores two one-thread workers beat one two-thread worker), asking
for test accuracy too. The table is written to ``nas_gym/tables/<preset>.jsonl.gz`` (format:
``nas_gym.benchmarks.table_file``).

Resuming: every result is stored, as it arrives, in a ``ResultCache`` (default
``~/.cache/nas-gym/table-build.sqlite``) under the context ``<result_context>:with-test``; a
killed build started again trains only what is missing. Why a context of its own rather than
the training evaluator's: (1) the training evaluator never asks for test accuracy, so its
entries cannot fill the table's test column, and the cache's first-write-wins rule would then
stop the table's result from ever being stored under the same key; (2) search must never see
a test accuracy, so results carrying one are kept out of the context searches read.

The simulated clock: a table row's ``train_seconds`` is the CPU time the worker process spent
on that evaluation (model build, training, validation and test scoring), not the trainer's
wall time. With one torch thread the two agree on an idle core, but a build shares the machine
with whatever else runs (here: other test suites), and wall time then charges an architecture
for its neighbours' work; CPU time stays the network's own cost.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.benchmarks.header import RUNTIME, seed_configs
from nas_gym.benchmarks.table_file import make_row
from nas_gym.config import Config, TrainConfig
from nas_gym.results import EvalResult
from nas_gym.spaces.base import Architecture
from nas_gym.storage.cache import Cache, result_context

DEFAULT_CACHE = Path("~/.cache/nas-gym/table-build.sqlite")
CONTEXT_SUFFIX = ":with-test"
Task = tuple[Architecture, int]  # (architecture, seed)


def build_context(config: Config) -> str:
    return result_context(config, config.search_space()) + CONTEXT_SUFFIX


# -- workers: data loaded once per process ----------------------------------------------------
_DATA: Any = None
_SPACE: Any = None


def _init_worker(config: Config, parent: int | None = None) -> None:
    import torch

    if parent is not None:  # a pool worker: it ends with the script, even one killed with SIGKILL
        from nas_gym.execution.lifeline import die_with_parent

        die_with_parent(parent)

    from nas_gym.data import load_dataset

    torch.set_num_threads(1)
    global _DATA, _SPACE
    _DATA = load_dataset(config.data)
    _SPACE = config.search_space(_DATA.input_shape)
    # The first training in a process pays one-off costs (lazy kernel set-up, first-call
    # allocations: about 1.7 s here, ten times a small network's run). Pay them on a throwaway
    # network, or the clock would charge them to whichever architecture a worker trains first.
    _train(_SPACE.sample(np.random.default_rng(0)).text(), TrainConfig(epochs=1), [0, 1])


def _train(arch_text: str, train: TrainConfig, seeds: Sequence[int]) -> list[EvalResult]:
    """Train ``arch_text`` once per seed, all seeds in one pass (``nas_gym.training.train.evaluate_seeds``:
    the members are stacked along channels, each with its own initialisation, data order and
    loss, and equal K separate runs within float rounding). ``train_seconds`` is this process's
    CPU seconds for the pass, split equally (see the module docstring)."""
    from nas_gym.training.train import evaluate_seeds

    cpu = time.process_time()
    results = evaluate_seeds(_SPACE.parse(arch_text), _DATA, train, RUNTIME, list(seeds), want_test=True,
                             space=_SPACE)
    share = (time.process_time() - cpu) / len(results)
    return [replace(r, train_seconds=share) for r in results]


# -- progress ---------------------------------------------------------------------------------
class Reporter:
    """A rich progress bar on a terminal; one plain line every ``every`` seconds otherwise
    (a build runs under nohup, and its log should say how far it got and how long is left)."""

    def __init__(self, total: int, done: int, every: float = 30.0) -> None:
        self.total, self.done, self.start_done, self.every = total, done, done, every
        self.start = self.last = time.perf_counter()
        self._bar = None
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn())
            self._bar.start()
            self._task = self._bar.add_task("training", total=total, completed=done)
        else:
            print(f"[build_table] {done}/{total} already in the cache; training {total - done}", flush=True)

    def advance(self, result: EvalResult) -> None:
        self.done += 1
        now = time.perf_counter()
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=result.arch[:40].ljust(40))
        elif now - self.last >= self.every or self.done == self.total:
            self.last = now
            rate = (self.done - self.start_done) / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate else float("inf")
            print(f"[build_table] {self.done}/{self.total}  {rate:.2f}/s  elapsed {now - self.start:.0f}s  "
                  f"eta {eta:.0f}s", flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


# -- building ---------------------------------------------------------------------------------
def evaluate_all(config: Config, seeds: Sequence[int], archs: Sequence[Architecture], cache: Cache,
                 workers: int = 2, on_result: Callable[[EvalResult], None] | None = None) -> dict[Task, EvalResult]:
    """Results for every (architecture, seed): from ``cache`` where stored, else trained and stored.

    Each result is stored as it arrives, so an interrupted build loses at most the
    evaluations in flight. ``workers == 1`` trains in this process (tests, debugging).
    """
    configs = seed_configs(config, seeds)
    results: dict[Task, EvalResult] = {}
    todo: list[Task] = []
    for s in seeds:
        for arch, hit in zip(archs, cache.get_many(archs, build_context(configs[s])), strict=True):
            if hit is not None:
                results[(arch, s)] = hit
            else:
                todo.append((arch, s))
    # a seeded shuffle: a partial build is a uniform sample of the space, useful before it is complete
    shuffled = np.random.default_rng(0).permutation(len(archs))
    order = {archs[int(j)]: i for i, j in enumerate(shuffled)}
    missing: dict[Architecture, list[int]] = {}  # architecture -> its seeds still to train, one pass each
    for arch, s in todo:
        missing.setdefault(arch, []).append(s)
    groups = sorted(missing.items(), key=lambda item: order[item[0]])

    def store(arch: Architecture, group_seeds: Sequence[int], trained: list[EvalResult]) -> None:
        for s, result in zip(group_seeds, trained, strict=True):
            ctx = build_context(configs[s])
            if not cache.put(arch, ctx, result):  # another build stored it first: keep that one
                result = cache.get(arch, ctx) or result
            results[(arch, s)] = result
            if on_result is not None:
                on_result(result)

    if not groups:
        return results
    if workers == 1:
        _init_worker(config)
        for arch, group_seeds in groups:
            store(arch, group_seeds, _train(arch.text(), config.train, group_seeds))
        return results
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=_init_worker, initargs=(config, os.getpid()))
    try:
        futures = {pool.submit(_train, a.text(), config.train, g): (a, g) for a, g in groups}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                store(*futures[f], f.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def make_rows(archs: Sequence[Architecture], seeds: Sequence[int], results: dict[Task, EvalResult]) -> list[dict]:
    return [make_row(a, [results[(a, s)] for s in seeds]) for a in archs]


def distinct_architectures(config: Config) -> list[Architecture]:
    """One architecture per canonical key, in the space's enumeration order: a table stores each
    distinct network once (isomorphic cells share a row)."""
    return list({a.key(): a for a in config.search_space().enumerate()}.values())
