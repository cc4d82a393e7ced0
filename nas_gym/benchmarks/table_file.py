"""A table file: its format (header and rows), the loaded ``Table``, and rows as results.

Split from ``nas_gym.evaluators.table`` (the evaluator and how a config finds its table), which
re-exports every name here. Nothing here imports torch: loading a table must stay fast.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nas_gym.benchmarks.table_checks import header_problem, row_problem
from nas_gym.config import Config, ConfigError
from nas_gym.results import FAILED, OK, EvalResult
from nas_gym.spaces.base import Architecture, ArchitectureError
from nas_gym.storage.atomic import atomic_write_bytes

# Version 2: rows are keyed by the space's key of today (for cells, the functional key, which
# merges cells that compute the same function with the same parameters); version 1 tables keyed
# cells structurally and stored copies. ``scripts/migrate_table.py`` converts one.
FORMAT, FORMAT_VERSION = "nas-gym-table", 2
# Where the shipped tables live (nas_gym/tables/<preset>.jsonl.gz), found by the table evaluator
# and written by the builders.
TABLE_DIR = Path(__file__).resolve().parent.parent / "tables"
SUFFIX = ".jsonl.gz"
SeedChoice = int | Literal["mean", "draw"]


# -- the file format ----------------------------------------------------------------------------
def _finite(x: float | None, digits: int | None = None) -> float | None:
    """JSON has no NaN: non-finite numbers are stored as null."""
    if x is None or not math.isfinite(x):
        return None
    return round(x, digits) if digits is not None else x


def make_row(arch: Architecture | str, results: Sequence[EvalResult]) -> dict[str, Any]:
    """One table line from the results of one architecture, one per seed in the header's order.

    Accuracies are kept exactly (they are ratios of small integers and round-trip through
    JSON); seconds are rounded to 0.1 ms, far below their run-to-run noise.
    """
    text = arch if isinstance(arch, str) else arch.text()
    if not results or any(r.arch != text for r in results):
        raise ValueError(f"make_row: need one result per seed, all for {text}")
    first = results[0]
    return {
        "arch": text,
        "params": int(first.params),
        "flops": int(first.flops),
        "status": [r.status for r in results],
        "reason": [r.reason for r in results],
        "val_acc": [_finite(r.val_acc) for r in results],
        "test_acc": [_finite(r.test_acc) for r in results],
        "train_loss": [_finite(r.train_loss) for r in results],
        "train_seconds": [_finite(r.train_seconds, 4) for r in results],
    }


def write_table(path: str | os.PathLike[str], header: dict[str, Any], rows: Sequence[dict[str, Any]]) -> int:
    """Write header and rows atomically (a reader never sees half a table); returns the bytes written.

    The gzip timestamp is fixed at 0 so that the same header and rows give the same bytes.
    """
    path = Path(path)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        for obj in (header, *rows):
            gz.write(json.dumps(obj, separators=(",", ":"), allow_nan=False).encode() + b"\n")
    atomic_write_bytes(path, buf.getvalue())
    return len(buf.getvalue())


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The header alone (the first line), e.g. to find which table matches a config."""
    try:
        with gzip.open(path, "rb") as f:
            header = json.loads(f.readline())
    except (OSError, EOFError, zlib.error, ValueError) as e:
        detail = " ".join(str(e).split())[:120]
        raise ConfigError(f"table {path}: cannot be read ({type(e).__name__}: {detail}); rebuild it with "
                          "scripts/build_table.py") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ConfigError(f"table {path}: not a nas-gym table (no '{FORMAT}' header); rebuild it with scripts/build_table.py")
    if header.get("format_version") == 1:
        raise ConfigError(f"table {path}: format version 1 (cells keyed by structure, with copies); convert it with "
                          f"python scripts/migrate_table.py {path} OUT, or rebuild it with scripts/build_table.py")
    if header.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"table {path}: format version {header.get('format_version')} but this nas-gym reads "
                          f"{FORMAT_VERSION}; rebuild it with scripts/build_table.py")
    return header


def built_config(header: dict[str, Any]) -> Config:
    """The config a table was built with: only the sections that decide its rows (space, data,
    trainer), so a table stays readable when unrelated sections gain or lose fields."""
    c = header.get("config", {})
    try:
        return Config.model_validate({"name": header.get("preset", "table"), "space": c["space"], "data": c["data"],
                                      "train": c["train"]})
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"table {header.get('preset', '?')!s:.40}: its header's config cannot be read "
                          f"({type(e).__name__}); rebuild it with scripts/build_table.py") from None


@dataclass(frozen=True, eq=False)
class Table:
    """A loaded table: its header, its architectures in file order and their rows (one object
    per file and process, compared by identity)."""

    path: Path
    header: dict[str, Any]
    archs: tuple[Architecture, ...]
    rows: tuple[dict[str, Any], ...]
    index: dict[str, int] = field(default_factory=dict, repr=False)  # canonical key -> row
    _results: dict = field(default_factory=dict, repr=False)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(self.header["seeds"])

    @property
    def max_epochs(self) -> int | None:
        """Epochs of the learning curves, or None for a table of final results only."""
        curves = self.rows[0].get("curves") if self.rows else None
        return len(curves["val_acc"][0]) if curves else None

    def results(self, seed: SeedChoice, epoch: int | None = None) -> dict[str, EvalResult]:
        """Canonical key -> result for one seed or the mean of all, after ``epoch`` epochs (None:
        the final result); built once per table, seed choice and epoch, so a second evaluator over
        the same table costs nothing to construct."""
        if (seed, epoch) not in self._results:
            epochs = float(built_config(self.header).train.epochs if epoch is None else epoch)
            self._results[(seed, epoch)] = {a.key(): _row_result(_at_epoch(r, epoch), self.seeds, seed, epochs)
                                            for a, r in zip(self.archs, self.rows, strict=True)}
        return self._results[(seed, epoch)]


_CURVE_FIELDS = ("val_acc", "test_acc", "train_loss", "train_seconds")


def _at_epoch(row: dict[str, Any], epoch: int | None) -> dict[str, Any]:
    """The row as it stood after ``epoch`` epochs (the row itself for None). A member whose curve
    is shorter failed before that epoch, and is failed there too."""
    if epoch is None:
        return row
    out = dict(row, status=list(row["status"]), reason=list(row["reason"]))
    for name in _CURVE_FIELDS:
        out[name] = [c[epoch - 1] if len(c) >= epoch else None for c in row["curves"][name]]
    for i, curve in enumerate(row["curves"]["val_acc"]):
        if len(curve) < epoch and out["status"][i] == OK:
            out["status"][i], out["reason"][i] = FAILED, "stopped_early"
    return out


def _mean(values: Sequence[float | None]) -> float:
    return math.fsum(v if v is not None else math.nan for v in values) / len(values)


def _row_result(row: dict[str, Any], seeds: tuple[int, ...], seed: SeedChoice, epochs: float) -> EvalResult:
    """The EvalResult a search sees: never the test accuracy.

    For the mean over seeds, an architecture is failed if any seed failed: a network that
    diverges under one seed is not one an agent should be rewarded for, and a mean over the
    surviving seeds would hide that. Its simulated cost is the mean seconds of one run.
    """
    idx = range(len(seeds)) if seed == "mean" else [seeds.index(seed)]
    pick = [row["val_acc"][i] for i in idx]
    seconds = _mean([row["train_seconds"][i] for i in idx])
    failed = [i for i in idx if row["status"][i] != OK]
    if failed:
        return EvalResult(arch=row["arch"], val_acc=0.0, params=row["params"], flops=row["flops"], train_seconds=seconds,
                          status=FAILED, reason=row["reason"][failed[0]], fidelity=epochs)
    return EvalResult(arch=row["arch"], val_acc=_mean(pick), params=row["params"], flops=row["flops"],
                      train_seconds=seconds, train_loss=_mean([row["train_loss"][i] for i in idx]), fidelity=epochs)


_TABLES: dict[tuple[str, int, int], Table] = {}  # (path, mtime_ns, size) -> Table: loaded once per process


def load_table(path: str | os.PathLike[str]) -> Table:
    """Read and check a table, once per process (a rewritten file is read again).

    Checks that its rows are exactly the architectures of the space its header describes,
    so an evaluator can treat "not in the table" as "not in the space".

    :raises ConfigError: unreadable, wrong format, or rows that do not cover the space.
    """
    path = Path(path).resolve()
    try:
        st = path.stat()
    except OSError as e:
        raise ConfigError(f"table {path}: cannot be read ({e.strerror}); build it with scripts/build_table.py") from None
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key in _TABLES:
        return _TABLES[key]
    header = read_header(path)
    try:
        with gzip.open(path, "rb") as f:
            f.readline()
            rows = tuple(json.loads(line) for line in f if line.strip())
    except (OSError, EOFError, zlib.error, ValueError) as e:  # damaged compression, bytes or JSON
        raise ConfigError(f"table {path}: cannot be read ({type(e).__name__}); rebuild it with "
                          "scripts/build_table.py") from None
    if header_problem(header):
        raise ConfigError(f"table {path}: its header's {header_problem(header)}; rebuild it with scripts/build_table.py")
    seeds = header["seeds"]
    try:
        space = built_config(header).search_space()
    except ValueError as e:  # ConfigError, ArchitectureError: a header whose config is not usable here
        raise ConfigError(f"table {path}: its header's config is not usable ({' '.join(str(e).split())[:160]}); "
                          "rebuild it with scripts/build_table.py") from None
    n_seeds = len(seeds)
    for number, row in enumerate(rows, 2):
        problem = row_problem(row, n_seeds)
        if problem:
            raise ConfigError(f"table {path}: line {number} {problem}; rebuild it with scripts/build_table.py")
    try:
        archs = tuple(space.parse(r["arch"]) for r in rows)
    except ArchitectureError as e:
        raise ConfigError(f"table {path}: a row is malformed ({e}); rebuild it with scripts/build_table.py") from None
    keys = [a.key() for a in archs]
    distinct = {a.key() for a in space.enumerate()}  # isomorphic architectures share one row
    if len(set(keys)) != len(keys) or set(keys) != distinct:
        raise ConfigError(f"table {path}: its {len(archs)} rows are not exactly the {len(distinct)} architectures of "
                          "its space; rebuild it with scripts/build_table.py")
    table = Table(path, header, archs, rows, {k: i for i, k in enumerate(keys)})
    for old in [k for k in _TABLES if k[0] == key[0]]:
        del _TABLES[old]
    _TABLES[key] = table
    return table
