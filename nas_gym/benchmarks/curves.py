"""Learning curves for a tabular benchmark: many (cell, seed) members per training pass, one
JSON line per member as it finishes, resumable from those lines.

A curve build trains for hours (every distinct cell x 3 seeds), longer than one sitting: the
lines file is the build's state. It is appended to and flushed after every pass, so a killed
build loses only the passes in flight, and a torn last line (a kill during the write) is
ignored on the next read. It is plain text, so partial results can be committed as they grow.

Line format: ``{"arch", "seed", "status", "reason", "params", "flops", "val": [...], "test":
[...], "loss": [...], "seconds": [...]}``, one list entry per epoch; ``seconds`` are the
member's cumulative CPU-seconds (``time.process_time`` of the worker, split equally over the
members of a pass), so a neighbour's load on the machine is not charged to the cell.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from nas_gym.benchmarks.table_file import make_row
from nas_gym.config import Config, RuntimeConfig
from nas_gym.spaces.base import Architecture, SearchSpace

RUNTIME = RuntimeConfig(device="cpu", threads=1)
_WORKER: dict[str, Any] = {}


def read_lines(path: Path) -> list[dict]:
    """The members recorded so far; a line that does not parse (torn by a kill) is skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and {"arch", "seed", "val"} <= set(row):
            out.append(row)
    return out


def init_worker(config: Config, parent: int | None = None) -> None:
    """Load the data once per process, one torch thread, and pay the first pass's one-off costs
    (lazy kernel set-up, first allocations) on a throwaway pass rather than on a cell's clock.
    With ``parent``, the worker ends when that process does (a killed build leaves no workers)."""
    import numpy as np
    import torch

    from nas_gym.data import load_dataset
    from nas_gym.execution.lifeline import die_with_parent

    if parent is not None:
        die_with_parent(parent)
    torch.set_num_threads(1)
    data = load_dataset(config.data)
    space = config.search_space(data.input_shape)
    _WORKER.update(config=config, data=data, space=space)
    warm = config.train.model_copy(update={"epochs": 1})
    _run([space.sample(np.random.default_rng(0)).text()], (0,), warm)


def _run(cells: Sequence[str], seeds: Sequence[int], train: Any) -> list[dict]:
    from nas_gym.training.members import evaluate_members

    space = _WORKER["space"]
    items = [(space.parse(c), tuple(seeds)) for c in cells]
    results = evaluate_members(items, _WORKER["data"], train, RUNTIME, space=space, want_test=True,
                               epoch_metrics=True, clock=time.process_time)
    lines = []
    for cell, members in zip(cells, results, strict=True):
        for seed, m in zip(seeds, members, strict=True):
            r = m.result
            lines.append({"arch": cell, "seed": int(seed), "status": r.status, "reason": r.reason, "params": r.params,
                          "flops": r.flops, "val": [p.val_acc for p in m.curve], "test": [p.test_acc for p in m.curve],
                          "loss": [p.train_loss for p in m.curve], "seconds": [round(p.seconds, 4) for p in m.curve]})
    return lines


def train_pass(cells: Sequence[str], seeds: Sequence[int]) -> list[dict]:
    """One grouped pass over ``cells`` x ``seeds`` in a worker set up by ``init_worker``."""
    return _run(cells, seeds, _WORKER["config"].train)


def build(config: Config, cells: Sequence[str], seeds: Sequence[int], path: Path, *, workers: int = 2,
          group: int = 8, on_pass: Callable[[int, int], None] | None = None) -> list[dict]:
    """Train every (cell, seed) not yet in ``path``, appending lines as passes finish; returns all lines.

    :param cells: architecture texts, trained in this order, ``group`` per pass.
    :param on_pass: called with (passes done, passes in all) after each pass.
    """
    _drop_torn_tail(path)
    space = config.search_space()
    have = {(space.parse(r["arch"]).key(), r["seed"]) for r in read_lines(path)}  # by key: any member's text
    todo = [c for c in cells if any((space.parse(c).key(), s) not in have for s in seeds)]
    chunks = [todo[i : i + group] for i in range(0, len(todo), group)]
    path.parent.mkdir(parents=True, exist_ok=True)
    if chunks:
        if workers == 1:
            init_worker(config)
            _append(path, (train_pass(c, seeds) for c in chunks), len(chunks), on_pass)
        else:
            pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=init_worker,
                                       initargs=(config, os.getpid()))
            try:
                _append(path, _as_done([pool.submit(train_pass, c, seeds) for c in chunks]), len(chunks), on_pass)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    return read_lines(path)


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that a kill left without its newline, so the next append starts clean."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def _as_done(futures: list) -> Iterable[list[dict]]:
    pending = set(futures)
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for f in done:
            yield f.result()


def _append(path: Path, passes: Iterable[list[dict]], total: int, on_pass: Callable[[int, int], None] | None) -> None:
    with path.open("a", encoding="utf-8") as out:
        for i, lines in enumerate(passes, start=1):
            out.write("".join(json.dumps(line, allow_nan=False) + "\n" for line in lines))
            out.flush()
            if on_pass is not None:
                on_pass(i, total)


def table_rows(space: SearchSpace, archs: Sequence[Architecture], seeds: Sequence[int],
               lines: Sequence[dict]) -> list[dict]:
    """Table rows (format 2 with ``curves``) for ``archs``, one entry per seed in ``seeds``' order;
    a line counts for the architecture whose key it has, whichever member's text it carries.

    :raises KeyError: a (cell, seed) has no line yet: the build is not complete.
    """
    from nas_gym.results import EvalResult

    by = {(space.parse(r["arch"]).key(), r["seed"]): r for r in lines}
    rows = []
    for arch in archs:
        members = [by[(arch.key(), s)] for s in seeds]
        results = [EvalResult(arch=arch.text(), val_acc=m["val"][-1] if m["val"] else 0.0, params=m["params"],
                              flops=m["flops"], train_seconds=m["seconds"][-1] if m["seconds"] else 0.0,
                              train_loss=m["loss"][-1] if m["loss"] else float("nan"),
                              test_acc=m["test"][-1] if m["test"] else None, status=m["status"], reason=m["reason"])
                   for m in members]
        row = make_row(arch, results)
        row["curves"] = {"val_acc": [m["val"] for m in members], "test_acc": [m["test"] for m in members],
                         "train_loss": [m["loss"] for m in members], "train_seconds": [m["seconds"] for m in members]}
        rows.append(row)
    return rows
