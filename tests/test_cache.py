"""The SQLite result cache: round trips, first write wins, foreign files untouched, processes."""

import math
import multiprocessing
import os
import pickle
import sqlite3
import warnings
from pathlib import Path

import pytest
from cache_files import write_foreign_sqlite, write_garbage

from nas_gym.evaluators.base import EvalResult
from nas_gym.spaces.layer_chain.chain import Chain
from nas_gym.storage import sqlite_cache as cache_mod
from nas_gym.storage.cache import (
    APPLICATION_ID,
    CacheError,
    MemoryCache,
    ResultCache,
    open_cache,
    resolve_path,
)

A = Chain.parse("conv3-16|maxpool|conv3-32")
B = Chain.parse("conv5-16")


def result(arch: Chain, acc: float = 0.5, **kw) -> EvalResult:
    return EvalResult(arch=arch.text(), val_acc=acc, params=100, flops=1000, train_seconds=1.5, train_loss=0.7,
                      fidelity=3.0, **kw)


@pytest.fixture(params=["sqlite", "memory"])
def any_cache(request, tmp_path):
    c = ResultCache(tmp_path / "c.sqlite") if request.param == "sqlite" else MemoryCache()
    yield c
    c.close()


def test_round_trip_and_first_write_wins(any_cache):
    assert any_cache.get(A, "ctx") is None and len(any_cache) == 0
    assert any_cache.put(A, "ctx", result(A, 0.5)) is True
    assert any_cache.put(A, "ctx", result(A, 0.9)) is False
    assert any_cache.get(A, "ctx") == result(A, 0.5)
    assert any_cache.get(A, "other") is None
    assert len(any_cache) == 1


def test_many_and_all(any_cache):
    assert any_cache.put_many([(A, result(A, 0.1)), (B, result(B, 0.2))], "c1") == 2
    assert any_cache.put_many([(A, result(A, 0.3)), (A, result(A, 0.4))], "c2") == 1
    assert any_cache.put_many([], "c2") == 0
    assert any_cache.get_many([B, A, B, Chain.parse("avgpool")], "c1") == [
        result(B, 0.2), result(A, 0.1), result(B, 0.2), None]
    entries = list(any_cache.all("c2"))
    assert [(e.arch, e.context, e.result.val_acc) for e in entries] == [(A.text(), "c2", 0.3)]
    assert sorted((e.arch, e.context) for e in any_cache.all()) == sorted(
        [(A.text(), "c1"), (B.text(), "c1"), (A.text(), "c2")])


def test_non_finite_and_failures_round_trip(tmp_path):
    failed = EvalResult.failure(A.text(), "too_many_params: 9 > 8", params=9, flops=90, fidelity=3.0)
    odd = EvalResult(arch=B.text(), val_acc=0.25, params=1, flops=2, train_loss=float("inf"), test_acc=0.5)
    with ResultCache(tmp_path / "c.sqlite") as c:
        c.put(A, "ctx", failed)
        c.put(B, "ctx", odd)
    with ResultCache(tmp_path / "c.sqlite") as c:
        got = c.get(A, "ctx")
        assert math.isnan(got.train_loss) and not got.ok
        assert (got.reason, got.params, got.fidelity) == ("too_many_params: 9 > 8", 9, 3.0)
        assert c.get(B, "ctx") == odd


def test_crashes_are_never_stored(any_cache):
    """A failure of our code or of a worker process is not a property of the architecture: a
    store refuses it (whoever writes), and a later result for the same key is stored."""
    crashed = [EvalResult.failure(A.text(), "exception: KeyError: 'x'"), EvalResult.failure(A.text(), "worker_died: SIGKILL")]
    assert [any_cache.put(A, "ctx", r) for r in crashed] == [False, False]
    assert any_cache.put_many([(A, crashed[0]), (B, EvalResult.failure(B.text(), "nan_loss"))], "ctx") == 1
    assert any_cache.get(A, "ctx") is None and any_cache.get(B, "ctx").reason == "nan_loss"
    assert any_cache.put(A, "ctx", result(A)) and any_cache.get(A, "ctx") == result(A)


def test_persists_across_reopen_and_pickle(tmp_path):
    path = tmp_path / "deep" / "folder" / "c.sqlite"  # parent folders are created
    c = ResultCache(path)
    c.put(A, "ctx", result(A))
    c.close()
    c2 = ResultCache(path)
    assert c2.get(A, "ctx") == result(A) and len(c2) == 1
    c3 = pickle.loads(pickle.dumps(c2))  # workers receive the path, not a connection
    assert c3.get(A, "ctx") == result(A)
    c2.close()
    c3.close()
    header = sqlite3.connect(path)
    assert header.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert header.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    header.close()


def test_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_GYM_CACHE", str(tmp_path / "env.sqlite"))
    assert resolve_path("auto") == tmp_path / "env.sqlite"
    monkeypatch.delenv("NAS_GYM_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_path("auto") == tmp_path / ".cache" / "nas-gym" / "evaluations.sqlite"
    assert resolve_path(None) is None
    assert isinstance(open_cache(None), MemoryCache)
    c = open_cache(str(tmp_path / "x.sqlite"))
    assert isinstance(c, ResultCache) and c.path == tmp_path / "x.sqlite"
    c.close()


def test_empty_file_is_adopted(tmp_path):
    path = tmp_path / "empty.sqlite"
    path.touch()
    with ResultCache(path) as c:
        assert c.put(A, "ctx", result(A))



def _other_app(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 1234")
    conn.execute("CREATE TABLE results (x)")
    conn.commit()
    conn.close()



def _text(path: Path) -> None:
    path.write_text("arch,val_acc\nconv3-16,0.5\n")


def _with_schema(version: str | None):
    def make(path: Path) -> None:
        ResultCache(path).close()
        conn = sqlite3.connect(path)
        if version is None:
            conn.execute("DELETE FROM meta WHERE key = 'schema_version'")
        else:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()

    return make


@pytest.mark.parametrize(
    "make, message",
    [
        (write_foreign_sqlite, "SQLite database holding other tables.*not a nas-gym cache.*left untouched"),
        (_other_app, r"another application \(application_id 0x4d2\)"),
        (write_garbage, "is not an SQLite database"),
        (_text, "is not an SQLite database"),
        (_with_schema("99"), r"newer nas-gym \(schema 99, this one reads 1\).*upgrade"),
        (_with_schema("0"), r"old schema 0.*delete it"),
        (_with_schema(None), "no schema version"),
    ],
    ids=["foreign-sqlite", "other-app-id", "garbage", "text", "future-schema", "old-schema", "no-version"],
)
def test_unusable_file_raises_and_is_untouched(tmp_path, make, message):
    """Foreign files are inspected read-only; a WAL-mode file (our own, of another schema)
    may get SQLite's -wal/-shm sidecars from that read, but its bytes never change."""
    path = tmp_path / "c.sqlite"
    make(path)
    before = path.read_bytes()
    siblings = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(CacheError, match=message) as info:
        ResultCache(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert path.read_bytes() == before
    if not (before.startswith(b"SQLite format 3\x00") and before[18] == 2):  # not WAL: no sidecar files either
        assert sorted(p.name for p in tmp_path.iterdir()) == siblings


def test_a_folder_is_refused_with_a_file_to_use_instead(tmp_path):
    """NAS_GYM_CACHE=/some/dir is a common slip: the error names a file inside it, not permissions."""
    folder = tmp_path / "cache"
    folder.mkdir()
    with pytest.raises(CacheError, match=r"is a folder, not a file; point .* at a file inside it, e\.g\. .*evaluations\.sqlite"):
        ResultCache(folder)
    assert list(folder.iterdir()) == []


def test_reopens_after_pid_change_without_closing_the_inherited_connection(tmp_path, monkeypatch):
    c = ResultCache(tmp_path / "c.sqlite")
    c.put(A, "ctx", result(A))
    inherited = c._conn
    monkeypatch.setattr(cache_mod.os, "getpid", lambda: -42)
    assert c.get(A, "ctx") == result(A)
    assert c._conn is not inherited and inherited in cache_mod._ABANDONED
    inherited.execute("SELECT 1")  # still open: closing it in a child could disturb the parent
    monkeypatch.undo()
    c.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_real_fork(tmp_path):
    c = ResultCache(tmp_path / "c.sqlite")
    c.put(A, "ctx", result(A))  # the parent's connection is open and used before the fork
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "process is multi-threaded" under some torch builds
        pid = os.fork()
    if pid == 0:  # child: must reopen, see the parent's row, and write its own
        code = 1
        try:
            code = 0 if c.get(A, "ctx") == result(A) and c.put(B, "ctx", result(B, 0.7)) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert c.get(B, "ctx") == result(B, 0.7)  # the parent's connection still works
    assert c.put(A, "other", result(A))
    c.close()


def _writer(path: str, index: int, barrier, queue) -> None:
    """Spawned worker: all workers write the same 40 keys with their own values, at once."""
    archs = [Chain.parse(f"conv3-{c}") for c in range(1, 41)]
    c = ResultCache(path, timeout=60)
    barrier.wait()
    stored = 0
    for arch in archs:
        stored += c.put(arch, "ctx", result(arch, acc=index / 10))
    queue.put((index, stored, [c.get(arch, "ctx").val_acc for arch in archs]))
    c.close()


@pytest.mark.slow
def test_two_processes_write_the_same_keys(tmp_path):
    path = str(tmp_path / "c.sqlite")
    ResultCache(path).close()
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(path, i, barrier, queue)) for i in (1, 2)]
    for p in procs:
        p.start()
    outcomes = sorted(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    (_, stored1, read1), (_, stored2, read2) = outcomes
    assert stored1 + stored2 == 40  # every key recorded exactly once
    assert read1 == read2  # both read back the winner's result
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*), count(DISTINCT arch_key) FROM results").fetchone() == (40, 40)
    conn.close()
