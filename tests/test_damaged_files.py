"""Damaged files stop with one line naming the file and the fix (issue 24, defects 5, 6 and 10).

Each case damages one file format the way a disk, a kill or a hand edit does, and checks the
outcome: the project's own error (``ConfigError``, ``CacheError``, ...) naming the file, or,
through the command, exit code 2 and one line; never a raw ``zlib.error``, ``BadZipFile``,
``IndexError``, ``MemoryError`` or ``TypeError``, and never an impossible value taken as a result.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
import struct
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nas_gym.cli import app
from nas_gym.config import ConfigError, load_config
from nas_gym.evaluators.base import EvalResult
from nas_gym.evaluators.surrogate import available_models
from nas_gym.evaluators.table import TableEvaluator, available_tables
from nas_gym.latency.model import LatencyTableError, load_table
from nas_gym.runs.checkpoint import MANIFEST, STATE, read_manifest
from nas_gym.storage.cache import CacheError, ResultCache
from nas_gym.storage.npz import NpzError, load_arrays
from nas_gym.surrogates.model import SurrogateModel

runner = CliRunner()
TINY_TABLE = next(p for p in available_tables() if p.name.startswith("mnist1d-tiny"))
SURROGATE = available_models()[0]


def one_line(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- the cache -------------------------------------------------------------------------------------
def _filled_cache(path: Path) -> None:
    space = load_config("mnist1d-tiny").search_space()
    with ResultCache(path) as cache:
        items = [(space.parse(f"conv3-{c}"), EvalResult(arch=f"conv3-{c}", val_acc=0.5, params=c, flops=c,
                                                        train_seconds=1.0)) for c in (8, 16, 32, 64)]
        cache.put_many(items, "ctx")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")  # everything in the main file, no -wal beside it
    conn.close()


def test_a_cache_with_damaged_data_pages_stops_with_one_line(tmp_path):
    path = tmp_path / "c.sqlite"
    _filled_cache(path)
    conn = sqlite3.connect(path)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'results'").fetchone()[0]
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    data[(root - 1) * page:root * page] = b"\xa5" * page  # the results table's page; the header and meta survive
    path.write_bytes(bytes(data))

    result = runner.invoke(app, ["eval", "conv3-16", "--config", "mnist1d-tiny", "--set", f"evaluator.cache={path}"])
    one_line(result, str(path), "is damaged", "evaluator.cache")


def test_a_cached_impossible_accuracy_is_refused(tmp_path):
    path = tmp_path / "c.sqlite"
    _filled_cache(path)
    conn = sqlite3.connect(path)
    for key, text in conn.execute("SELECT arch_key, result FROM results").fetchall():
        conn.execute("UPDATE results SET result = ? WHERE arch_key = ?", (json.dumps({**json.loads(text), "val_acc": 7.5}), key))
    conn.commit()
    conn.close()
    with pytest.raises(CacheError, match="outside"):
        list(ResultCache(path).all())


def test_probing_a_rejected_wal_cache_leaves_no_files(tmp_path):
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(CacheError, match="holding other tables"):
        ResultCache.check(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no -wal, no -shm


def test_a_locked_cache_says_it_is_locked_not_unwritable(tmp_path):
    path = tmp_path / "c.sqlite"
    _filled_cache(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a long write
    try:
        with pytest.raises(CacheError, match="locked by another process") as error:
            ResultCache(path, timeout=0.2)
        assert "writable" not in str(error.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# -- the table -------------------------------------------------------------------------------------
def _table_lines() -> list[bytes]:
    with gzip.open(TINY_TABLE, "rb") as f:
        return f.read().splitlines()


def _write_table(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", mtime=0))
    return path


def _edit_row(field: str, value: object) -> list[bytes]:
    lines = _table_lines()
    row = json.loads(lines[1])
    row[field] = value
    lines[1] = json.dumps(row).encode()
    return lines


TABLE_DAMAGE = {
    "truncated": lambda p: p.write_bytes(TINY_TABLE.read_bytes()[:-200]),
    "flipped-bytes": lambda p: p.write_bytes(TINY_TABLE.read_bytes()[:300] + b"\x00" * 64 + TINY_TABLE.read_bytes()[364:]),
    "not-gzip": lambda p: p.write_bytes(b"just text\n"),
    "val-acc-7.5": lambda p: _write_table(p, _edit_row("val_acc", [7.5, 0.5])),
    "val-acc-nan": lambda p: _write_table(p, _edit_row("val_acc", [float("nan"), 0.5])),
    "params-text": lambda p: _write_table(p, _edit_row("params", "many")),
    "seconds-negative": lambda p: _write_table(p, _edit_row("train_seconds", [-1.0, 1.0])),
    "row-not-a-mapping": lambda p: _write_table(p, [*_table_lines()[:1], b"[1, 2]", *_table_lines()[2:]]),
    "header-config-wrong": lambda p: _write_table(p, [json.dumps({**json.loads(_table_lines()[0]), "config": 3}).encode(),
                                                      *_table_lines()[1:]]),
}


@pytest.mark.parametrize("damage", list(TABLE_DAMAGE), ids=list(TABLE_DAMAGE))
def test_a_damaged_table_is_one_config_error_naming_it(tmp_path, damage):
    path = tmp_path / "t.jsonl.gz"
    TABLE_DAMAGE[damage](path)
    with pytest.raises(ConfigError, match=r"t\.jsonl\.gz.*rebuild it with scripts/build_table.py"):
        TableEvaluator(load_config("mnist1d-tiny"), path=path)


# -- the surrogate and .npz files ----------------------------------------------------------------
def _npz_members(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _resaved(path: Path, **changes: np.ndarray) -> None:
    arrays = {**_npz_members(SURROGATE), **changes}
    with path.open("wb") as f:
        np.savez_compressed(f, **arrays)


def _claim_huge(path: Path, member: str) -> None:
    """Rewrite ``member`` of the archive at ``path`` so its .npy header claims 10^12 rows."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    blob = members[member]
    header_len = struct.unpack("<H", blob[8:10])[0]
    header = blob[10:10 + header_len].decode()
    start = header.index("'shape': (") + len("'shape': (")
    end = header.index(",", start) if "," in header[start:header.index(")", start)] else header.index(")", start)
    fake = (header[:start] + "1000000000000" + header[end:]).ljust(header_len - 1) + "\n"
    members[member] = blob[:10] + fake.encode()[:header_len] + blob[10 + header_len:]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)


def _huge_header(path: Path) -> None:
    """A valid surrogate whose ``value`` array claims 10^12 elements in its .npy header."""
    _resaved(path)
    _claim_huge(path, "value.npy")


SURROGATE_DAMAGE = {
    "truncated": lambda p: p.write_bytes(SURROGATE.read_bytes()[: len(SURROGATE.read_bytes()) // 2]),
    "flipped-bytes": lambda p: p.write_bytes(SURROGATE.read_bytes()[:2000] + b"\xff" * 512 + SURROGATE.read_bytes()[2512:]),
    "huge-shape": _huge_header,
    "nan-values": lambda p: _resaved(p, value=np.full_like(_npz_members(SURROGATE)["value"], np.nan)),
    "child-out-of-range": lambda p: _resaved(p, children=_npz_members(SURROGATE)["children"] + 10**6),
    "feature-out-of-range": lambda p: _resaved(p, feature=_npz_members(SURROGATE)["feature"] + 10**4),
    "pickled-objects": lambda p: _resaved(p, baseline=np.array([1.0, "x"], dtype=object)),
}


@pytest.mark.parametrize("damage", list(SURROGATE_DAMAGE), ids=list(SURROGATE_DAMAGE))
def test_a_damaged_surrogate_is_one_config_error_naming_it(tmp_path, damage):
    path = tmp_path / "s.surrogate.npz"
    SURROGATE_DAMAGE[damage](path)
    with pytest.raises(ConfigError, match=r"s\.surrogate\.npz.*refit it"):
        SurrogateModel.load(path)


def test_an_npz_header_claiming_more_than_the_file_holds_is_refused_before_allocating(tmp_path):
    path = tmp_path / "s.npz"
    _huge_header(path)
    with pytest.raises(NpzError, match="claims shape"):
        load_arrays(path, ["value"])


def test_a_user_npz_dataset_claiming_a_huge_shape_is_one_line(tmp_path):
    from nas_gym.data.settings import DataConfig

    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((64, 40), np.float32), y_train=np.arange(64) % 2)
    _claim_huge(path, "x_train.npy")
    with pytest.raises(ValueError, match=r"d\.npz is damaged .*claims shape"):  # DatasetError, in pydantic's wrapper
        DataConfig(name="arrays", path=str(path)).info()


# -- the latency table -----------------------------------------------------------------------------
def _latency_table(tmp_path: Path, **changes: object) -> Path:
    raw = {"format": 1, "cpu": "x", "device": "cpu", "torch": "2", "threads": 1, "repeats": 3, "warmup": 1,
           "preset": {"name": "mnist1d-tiny", "space": {"kind": "layer_chain"}, "input_shape": [1, 40], "num_classes": 10},
           "entries": {"conv": 0.5}, "intercept_ms": 0.1, "scale": 1.0, "fit": {}, "profile_seconds": 1.0, **changes}
    path = tmp_path / "lat.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize("changes", [{"entries": ["conv", 1]}, {"entries": {"conv": -0.5}}, {"entries": {"conv": float("nan")}},
                                     {"scale": "big"}, {"intercept_ms": float("inf")}, {"threads": 1.5}, {"preset": None}, {"entries": {}}],
                         ids=["entries-list", "negative", "nan", "scale-text", "intercept-inf", "threads-float", "preset-null", "empty"])
def test_a_latency_table_of_wrong_types_or_ranges_is_one_line(tmp_path, changes):
    with pytest.raises(LatencyTableError, match=r"lat\.json is not a latency table"):
        load_table(_latency_table(tmp_path, **changes))


# -- run folders -----------------------------------------------------------------------------------
def test_a_non_utf8_run_csv_is_one_line_naming_it(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "evaluations.csv").write_bytes(b"episode,arch\n1,\xff\xfe\n")
    one_line(runner.invoke(app, ["leaderboard", str(run)]), "evaluations.csv", "damaged")


@pytest.fixture
def stopped_run(tmp_path) -> Path:
    from test_trust import stopped_run as make

    return make(tmp_path / "runs", "qlearning")


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", ["manifest-types", "state-types", "state-not-json", "agent-file"])
def test_a_damaged_checkpoint_is_one_line_and_the_folder_is_left_as_it_was(stopped_run, damage):
    run_dir = stopped_run
    folder = run_dir / read_manifest(run_dir).checkpoint
    if damage == "manifest-types":
        raw = json.loads((run_dir / MANIFEST).read_text())
        (run_dir / MANIFEST).write_text(json.dumps({**raw, "episodes": "many"}))
    elif damage == "state-types":
        (folder / STATE).write_text(json.dumps({"log": {"episodes": "abc"}, "stats": {}, "evaluator": {}}))
    elif damage == "state-not-json":
        (folder / STATE).write_bytes(b"\xff\x00{")
    else:
        agent_file = next(p for p in folder.iterdir() if p.name.startswith("agent"))
        agent_file.write_bytes(b"\x00garbage")
    before = _files(run_dir)
    # trusted, so the damage itself (not the broken signature) is what the resume meets
    line = one_line(runner.invoke(app, ["search", "--resume", str(run_dir), "--episodes", "12", "--trust-run-folder"]),
                    str(run_dir))
    assert "Traceback" not in line
    assert _files(run_dir) == before  # no manifest, command.txt or CSV rewritten by the failed resume


def test_stale_temporary_files_are_removed_by_the_next_resume(stopped_run):
    run_dir = stopped_run
    (run_dir / f".{MANIFEST}.12345.tmp").write_text("{half")
    (run_dir / "checkpoint" / ".ep-000099.tmp").mkdir()
    result = runner.invoke(app, ["search", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert not list(run_dir.glob(".*.tmp")) and not list((run_dir / "checkpoint").glob(".*.tmp"))


def test_shipped_files_pass_their_own_checks():
    """The range and structure checks accept what nas-gym ships (else every search would stop)."""
    for path in available_tables():
        TableEvaluator(load_config(path.name.removesuffix(".jsonl.gz")), path=path)
    SurrogateModel.load(SURROGATE)
    shutil.disk_usage(SURROGATE.parent)  # the files are where the package says
