"""Two real processes sharing one cache file at the same time: both finish, every result is
stored exactly once, the file stays intact, and both processes report the same results.

Two workloads, each run by two ``sys.executable`` subprocesses started together:

* the training evaluator's full cache path (look up, compute the miss, store, read back the
  winner on a conflict) over every architecture of the tiny space, in a different random order
  per process, so the two write the same keys again and again; the results come from the
  synthetic scorer tagged with the writing process, so a row shows who stored it;
* two real ``nas-gym search`` runs (random agent, same seed, real training: one epoch on a quarter of the data): the
  same architectures in the same order, each trained in both processes at the same time.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nas_gym.config import load_config

pytestmark = pytest.mark.slow

# Every architecture of the tiny space: each process evaluates its own tenth, the other's tenth
# stays untouched by it, and the remaining 80% are contested by both.
WORKER = textwrap.dedent("""
    import dataclasses, json, sys, time
    from pathlib import Path

    import numpy as np

    from nas_gym.config import load_config
    from nas_gym.execution.backends import BackendBase
    from nas_gym.storage.cache import ResultCache
    from nas_gym.evaluators.synthetic import SyntheticEvaluator
    from nas_gym.evaluators.training import TrainingEvaluator

    cache_path, index, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    config = load_config("mnist1d-tiny", {"evaluator.cache": cache_path})
    space = config.search_space()
    archs = list(space.enumerate())
    tenth = len(archs) // 10
    mine = archs[:tenth] if index == 1 else archs[tenth:2 * tenth]
    todo = mine + archs[2 * tenth:]
    np.random.default_rng(index).shuffle(todo)

    class Tagged(BackendBase):
        '''Synthetic scores, tagged with this process's index in train_seconds.'''

        def __init__(self):
            self.scorer = SyntheticEvaluator(space)

        def run(self, batch, on_result=None):
            out = []
            for i, arch in enumerate(batch):
                result = dataclasses.replace(self.scorer.evaluate(arch), train_seconds=float(index))
                if on_result is not None:
                    on_result(i, result)
                out.append(result)
            return out

        def close(self):
            pass

    with TrainingEvaluator(config, cache=ResultCache(cache_path, timeout=60), backend=Tagged()) as evaluator:
        (folder / f"ready{index}").touch()
        while not (folder / "go").exists():  # start together: the parent creates "go" once both are ready
            time.sleep(0.01)
        results = {}
        for start in range(0, len(todo), 7):  # single lookups and small batches: many short transactions
            chunk = todo[start:start + 7]
            got = [evaluator.evaluate(chunk[0])] + evaluator.evaluate_many(chunk[1:]) if start % 2 else \\
                evaluator.evaluate_many(chunk)
            results.update((a.text(), r.to_dict()) for a, r in zip(chunk, got))
    print(json.dumps({"results": results, "mine": [a.text() for a in mine]}))
""")


def _start_together(commands: list[list[str]], folder: Path, ready: list[Path]) -> list[subprocess.CompletedProcess]:
    """Start the commands, release them together once all have signalled ``ready``, wait."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for c in commands]
    try:
        while not all(p.exists() for p in ready):
            if any(proc.poll() not in (None, 0) for proc in procs):
                break  # one died while starting: report it below instead of waiting forever
            time.sleep(0.02)
        (folder / "go").touch()
        outputs = [proc.communicate(timeout=240) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return [subprocess.CompletedProcess(c, proc.returncode, out, err)
            for c, proc, (out, err) in zip(commands, procs, outputs, strict=True)]


def _stored(path: Path) -> tuple[list[tuple], str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT arch_key, context, arch, result FROM results").fetchall()
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    return rows, integrity


def _once_each(rows: list[tuple]) -> dict[str, dict]:
    """arch text -> stored result; fails if any (key, context) or architecture appears twice."""
    assert len({(r[0], r[1]) for r in rows}) == len(rows)
    assert len({r[2] for r in rows}) == len(rows)
    return {arch: json.loads(result) for _, _, arch, result in rows}


def test_two_processes_share_one_cache_through_the_evaluator(tmp_path):
    cache = tmp_path / "shared.sqlite"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    done = _start_together([[sys.executable, str(script), str(cache), str(i), str(tmp_path)] for i in (1, 2)],
                           tmp_path, [tmp_path / "ready1", tmp_path / "ready2"])
    for proc in done:
        assert proc.returncode == 0, proc.stderr[-3000:]
    (one, two) = (json.loads(p.stdout) for p in done)

    rows, integrity = _stored(cache)
    assert integrity == "ok"
    stored = _once_each(rows)
    n_archs = load_config("mnist1d-tiny").search_space().size()
    assert len(stored) == n_archs  # the union of both lists, each exactly once
    shared = set(one["results"]) & set(two["results"])
    assert len(shared) == n_archs - len(one["mine"]) - len(two["mine"]) > n_archs // 2
    for arch in shared:  # first stored wins, and both processes were told the winner's result
        assert one["results"][arch] == two["results"][arch] == stored[arch]
    for index, report in ((1, one), (2, two)):
        assert all(report["results"][a] == stored[a] for a in report["results"])
        assert all(stored[a]["train_seconds"] == index for a in report["mine"])  # only this process had them


def test_two_real_searches_share_one_cache(tmp_path):
    cache = tmp_path / "shared.sqlite"
    episodes = 6

    def command(i: int) -> list[str]:
        return [sys.executable, "-m", "nas_gym.cli", "search", "--agent", "random", "--config", "mnist1d-tiny",
                "--episodes", str(episodes), "--seed", "0", "--logdir", str(tmp_path / f"runs{i}"),
                "--set", f"evaluator.cache={cache}", "--set", "train.epochs=1", "--set", "data.train_fraction=0.25",
                "--set", "space.max_depth=3"]

    # The CLI has no "ready" hook: these two are simply started together; same seed, same
    # architectures in the same order, so they train and store the same keys side by side.
    done = _start_together([command(1), command(2)], tmp_path, [])
    for proc in done:
        assert proc.returncode == 0, proc.stderr[-3000:]

    rows, integrity = _stored(cache)
    assert integrity == "ok"
    stored = _once_each(rows)
    seen: list[dict[str, str]] = []
    for i in (1, 2):
        (run_dir,) = (tmp_path / f"runs{i}").iterdir()
        with (run_dir / "evaluations.csv").open(newline="") as f:
            run_rows = list(csv.DictReader(f))
        assert len(run_rows) == episodes
        seen.append({r["arch"]: r["val_acc"] for r in run_rows})
    assert seen[0] == seen[1]  # the same architectures, with the same results, in both runs
    assert set(stored) == set(seen[0])
    for arch, val_acc in seen[0].items():
        assert float(val_acc) == pytest.approx(stored[arch]["val_acc"], abs=1e-6)
