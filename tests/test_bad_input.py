"""Bad input through the ``nas-gym`` command: one line naming the problem and the fix, exit
code 2, and nothing written: no run folder, no cache file created, an existing cache file
byte-for-byte and mtime unchanged.

The bad data root and the bad cache files reach the code that loads data and opens caches, so
these cases also prove the order of the checks: everything is inspected before anything is
created.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from cache_files import write_foreign_sqlite, write_garbage
from typer.testing import CliRunner

from nas_gym.cli import app
from nas_gym.storage.cache import ResultCache

runner = CliRunner()




def _future_schema(path: Path) -> None:
    ResultCache(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _empty_latency_table(tmp_path: Path) -> str:
    (tmp_path / "empty.json").write_text("")
    return f"reward.latency_table={tmp_path / 'empty.json'}"


def _bad_yaml(tmp_path: Path) -> str:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nspace:\n  ops: [conv3-16, maxpool\n  max_depth: 3\n")
    return str(path)


# (arguments, text the one line must contain, how to make the cache file beforehand or None)
# "{tmp}" in an argument is replaced by the test's folder; a callable builds the argument.
CASES: list[tuple[str, list, list[str], Callable[[Path], None] | None]] = [
    ("yaml-syntax", ["search", "--config", _bad_yaml], ["broken.yaml", "not valid YAML", "fix the syntax"], None),
    ("unknown-key", ["search", "--set", "train.epochz=2"], ["train.epochz", "unknown key", "check its spelling"], None),
    ("out-of-range", ["search", "--set", "train.lr=1e6"], ["train.lr", "less than or equal to 10"], None),
    ("not-finite", ["search", "--set", "reward.failure_reward=.nan"], ["reward.failure_reward", "finite"], None),
    ("bad-op", ["search", "--set", "space.ops=[conv3-16,convx]"], ["space.ops", "cannot parse op 'convx'", "expected one of"], None),
    ("repeated-op", ["search", "--set", "space.ops=[conv3-16,conv3-16s1]"], ["space.ops", "listed twice"], None),
    ("empty-space", ["search", "--set", "space.ops=[maxpool]", "--set", "space.min_depth=2"],
     ["space.min_depth", "no chain"], None),
    ("set-not-yaml", ["search", "--set", "train.lr=[0.1"], ["--set 'train.lr=[0.1'", "not valid YAML", "quote it"], None),
    ("unknown-dataset", ["search", "--set", "data.name=imagenet"], ["data.name", "'imagenet'", "'cifar10'"], None),
    ("arch-typo", ["eval", "conv3-32|maxpol"], ["cannot parse op 'maxpol'", "maxpool"], None),
    ("data-root-search", ["search", "--config", "cifar10", "--set", "data.root=/nonexistent"],
     ["cifar10", "data root /nonexistent does not exist (data.root)", "data.download"], None),
    ("data-root-eval", ["eval", "conv3-64", "--config", "cifar10", "--set", "data.root=/nonexistent"],
     ["data root /nonexistent does not exist"], None),
    ("cache-garbage", ["search"], ["c.sqlite", "not an SQLite database", "evaluator.cache"], write_garbage),
    ("cache-garbage-eval", ["eval", "conv3-16"], ["c.sqlite", "not a nas-gym cache"], write_garbage),
    ("cache-foreign-sqlite", ["search"], ["c.sqlite", "holding other tables", "evaluator.cache"], write_foreign_sqlite),
    ("cache-future-schema", ["search"], ["c.sqlite", "newer nas-gym (schema 99", "upgrade"], _future_schema),
    # issue 24: set-ups refused only after the run folder existed, names that are paths, absurd sizes
    ("table-other-epochs", ["search", "--evaluator", "table", "--set", "train.epochs=1"],
     ["mnist1d-tiny.jsonl.gz", "train.epochs=2"], None),
    ("table-seed", ["search", "--evaluator", "table", "--set", "evaluator.table_seed=7"],
     ["seed 7 is not one of its seeds"], None),
    ("unknown-proxy", ["search", "--evaluator", "proxy:nonexistent"], ["unknown proxy 'nonexistent'"], None),
    ("latency-table-empty", ["search", "--evaluator", "table", "--set", "reward.cost=latency_model", "--set",
                             _empty_latency_table], ["empty.json", "is not a latency table"], None),
    ("name-is-a-path", ["search", "--set", "name=../../../../escaped"], ["name '../../../../escaped'", "no '..'"], None),
    ("name-is-a-path-eval", ["eval", "conv3-16", "--set", "evaluator.kind=table", "--set", "name=../surrogates/mnist1d"],
     ["name '../surrogates/mnist1d'"], None),
    ("batch-size-huge", ["search", "--set", "train.batch_size=1000000000000000000000000000000"],
     ["train.batch_size", "less than or equal to 1000000"], None),
]


@pytest.mark.parametrize("args, needles, make_cache", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, args, needles, make_cache):
    cache, logdir = tmp_path / "c.sqlite", tmp_path / "runs"
    args = [a(tmp_path) if callable(a) else a for a in args]
    if "--config" not in args:
        args += ["--config", "mnist1d-tiny"]
    args += ["--set", f"evaluator.cache={cache}"]
    if args[0] == "search":
        args += ["--agent", "random", "--episodes", "2", "--logdir", str(logdir)]
    before = None
    if make_cache is not None:
        make_cache(cache)
        before = (cache.read_bytes(), cache.stat().st_mtime_ns)

    result = runner.invoke(app, args)

    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]
    assert not logdir.exists() or not any(logdir.iterdir())
    if before is None:
        assert not cache.exists()
    else:
        assert (cache.read_bytes(), cache.stat().st_mtime_ns) == before


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc, where no folder can be created")
def test_a_cache_folder_that_cannot_be_created_leaves_no_run_folder(tmp_path):
    """The cache check passes (no file there yet) and opening fails later: the run folder made in
    between is removed (issue 24, defect 7)."""
    logdir = tmp_path / "runs"
    result = runner.invoke(app, ["search", "--config", "mnist1d-tiny", "--agent", "random", "--episodes", "2",
                                 "--logdir", str(logdir), "--set", "evaluator.cache=/proc/nas-gym-nope/c.sqlite"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: cache /proc/nas-gym-nope/c.sqlite: cannot create its folder")
    assert not logdir.exists() or not any(logdir.iterdir())
