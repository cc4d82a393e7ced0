"""Property tests over damaged bytes (issue 24, item 8): whatever a disk, a kill or a hand edit
does to a file nas-gym reads, the reader returns a value or raises the project's own one-line
error naming the file; never another exception (``zlib.error``, ``IndexError``, ``MemoryError``...).

Each example starts from a real file of the format and damages it: bytes overwritten at drawn
positions, and optionally a truncation. Names and architectures get arbitrary text.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nas_gym.cli import app
from nas_gym.config import ConfigError, check_name, load_config
from nas_gym.evaluators.base import EvalResult
from nas_gym.evaluators.surrogate import available_models
from nas_gym.evaluators.table import available_tables, load_table
from nas_gym.latency.model import LatencyTableError
from nas_gym.latency.model import load_table as load_latency
from nas_gym.runs.checkpoint import CheckpointError, Manifest, read_manifest, read_state, write_manifest
from nas_gym.runs.runlog import RunLogError, read_rows
from nas_gym.storage.cache import CacheError, ResultCache
from nas_gym.surrogates.model import SurrogateModel

SETTINGS = settings(max_examples=25, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
WORK = Path(tempfile.mkdtemp(prefix="nas-gym-fuzz-"))
_COUNTER = itertools.count()

damage = st.tuples(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=8)), max_size=4),
                   st.one_of(st.none(), st.floats(0, 1)))


def damaged(original: bytes, how: tuple) -> bytes:
    data = bytearray(original)
    writes, cut = how
    for where, blob in writes:
        at = int(where * len(data))
        data[at:at + len(blob)] = blob
    return bytes(data[: int(cut * len(data))]) if cut is not None else bytes(data)


def fresh(suffix: str, data: bytes) -> Path:
    """A new file per example: the readers memoise by path, size and mtime."""
    path = WORK / f"f{next(_COUNTER)}{suffix}"
    path.write_bytes(data)
    return path


def _cache_bytes() -> bytes:
    path = WORK / "seed.sqlite"
    space = load_config("mnist1d-tiny").search_space()
    with ResultCache(path) as cache:
        cache.put_many([(space.parse(f"conv3-{c}"), EvalResult(arch=f"conv3-{c}", val_acc=0.5, params=c, flops=c,
                                                               train_seconds=1.0)) for c in (8, 16, 32, 64)], "ctx")
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    return path.read_bytes()


def _run_files() -> tuple[bytes, bytes]:
    run = WORK / "run"
    (run / "checkpoint" / "ep-000002").mkdir(parents=True)
    (run / "checkpoint" / "ep-000002" / "search.json").write_text(json.dumps(
        {"log": {"episodes": 2, "records": 2}, "stats": {"evaluations": 2}, "evaluator": {"seen": ["a"]}}))
    write_manifest(run, Manifest("random", "mnist1d-tiny", 0, 4, 2, None, "abc", checkpoint="checkpoint/ep-000002"))
    return (run / "checkpoint.json").read_bytes(), (run / "checkpoint" / "ep-000002" / "search.json").read_bytes()


def _read_run(manifest: bytes, state: bytes) -> None:
    run = WORK / f"run{next(_COUNTER)}"
    (run / "checkpoint" / "ep-000002").mkdir(parents=True)
    (run / "checkpoint.json").write_bytes(manifest)
    (run / "checkpoint" / "ep-000002" / "search.json").write_bytes(state)
    read_state(run, read_manifest(run))


LATENCY = json.dumps({"format": 1, "cpu": "x", "device": "cpu", "torch": "2", "threads": 1, "repeats": 3, "warmup": 1,
                      "preset": {"name": "t", "space": {"kind": "layer_chain"}, "input_shape": [1, 40], "num_classes": 10},
                      "entries": {"conv": 0.5}, "intercept_ms": 0.1, "scale": 1.0, "fit": {},
                      "profile_seconds": 1.0}).encode()
CSV = b"episode,arch,val_acc,reward,params,flops,status,reason,evaluations,cached\n1,conv3-16,0.5,0.5,10,20,ok,,1,0\n"
MANIFEST_BYTES, STATE_BYTES = _run_files()

# format -> (original bytes, reader of a damaged copy, the project's errors)
FORMATS: dict[str, tuple[bytes, Callable[[bytes], object], tuple[type[BaseException], ...]]] = {
    "table": (available_tables()[-1].read_bytes(), lambda b: load_table(fresh(".jsonl.gz", b)), (ConfigError,)),
    "surrogate": (available_models()[0].read_bytes(), lambda b: SurrogateModel.load(fresh(".npz", b)), (ConfigError,)),
    "cache": (_cache_bytes(), lambda b: list(ResultCache(fresh(".sqlite", b)).all()), (CacheError,)),
    "latency-table": (LATENCY, lambda b: load_latency(fresh(".json", b)), (LatencyTableError,)),
    "run-csv": (CSV, lambda b: read_rows(fresh(".csv", b)), (RunLogError,)),
    "manifest": (MANIFEST_BYTES, lambda b: _read_run(b, STATE_BYTES), (CheckpointError,)),
    "search-state": (STATE_BYTES, lambda b: _read_run(MANIFEST_BYTES, b), (CheckpointError,)),
}


@pytest.mark.parametrize("fmt", list(FORMATS), ids=list(FORMATS))
@SETTINGS
@given(how=damage)
@example(how=([(0.21518205570106602, b"\x80")], None))  # found here: a cache schema whose SQLite error is not UTF-8
def test_damaged_bytes_give_a_value_or_one_line(fmt, how):
    original, read, errors = FORMATS[fmt]
    try:
        read(damaged(original, how))
    except errors as e:
        message = str(e)
        assert len(message.splitlines()) == 1 and str(WORK) in message, message


@SETTINGS
@given(name=st.text(max_size=80))
def test_any_name_is_a_safe_name_or_refused(name):
    try:
        checked = check_name(name)
    except ValueError:
        return
    assert "/" not in checked and "\\" not in checked and ".." not in checked and checked not in (".", "")


@settings(max_examples=20, deadline=None, database=None)
@given(arch=st.text(min_size=1, max_size=40).filter(lambda t: not t.startswith("-")))
def test_any_architecture_text_through_eval_exits_0_or_2(arch):
    result = CliRunner().invoke(app, ["eval", arch, "--config", "mnist1d-tiny", "--set", "evaluator.kind=table",
                                      "--set", "evaluator.cache=null"])
    assert result.exit_code in (0, 2), (arch, result.output, result.exception)
    if result.exit_code == 2:
        assert len(result.output.strip().splitlines()) == 1 and "\x1b" not in result.output
