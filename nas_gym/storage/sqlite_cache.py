"""The persistent cache of evaluation results, keyed by (architecture, context), in SQLite.

Training an architecture costs seconds to hours and the same architecture comes back again and
again (MetaQNN reuses a repeated architecture's stored accuracy), so every evaluator looks here
first. The key is ``Architecture.key()`` plus a context (``cache.result_context``: the dataset,
split and trainer recipe, the search space's identity, and :data:`TRAINER_VERSION`), so a result
is only reused under the exact conditions, and the code, that produced it; off the CPU the device
type, precision, TF32 and determinism settings join the context. Only results that are
properties of the architecture are stored (``EvalResult.cacheable``): a crash of our own code or
of a worker process is retried the next time, not remembered, and running out of memory (which
depends on the device and on its other tenants) is remembered by the run that met it only.

Why it is built the way it is:

* Several processes (a process pool, Ray workers, two terminals) may share one file, so writes
  run in ``BEGIN IMMEDIATE`` transactions, readers use WAL mode and a busy timeout, and a write
  is ``INSERT ... ON CONFLICT DO NOTHING``: the first stored result wins, a task that runs twice
  (Ray retries) never records a result twice, and every process reads back the same result.
* A connection must never cross ``fork``: it is opened lazily and reopened when ``os.getpid()``
  changes; the inherited one is kept alive but never used or closed (closing it in the child
  could run a checkpoint behind the parent's back).
* The cache must never damage a file it does not own: a file is first inspected through a
  read-only connection and is only opened for writing if it is empty or already a nas-gym
  cache of this schema version (``PRAGMA application_id`` plus a ``meta`` table).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from nas_gym.errors import NasGymError
from nas_gym.results import EvalResult

if TYPE_CHECKING:
    from nas_gym.spaces.base import Architecture

APPLICATION_ID = 0x4E415347  # "NASG": marks the file as ours in the SQLite header
SCHEMA_VERSION = 1
DEFAULT_PATH = Path("~/.cache/nas-gym/evaluations.sqlite")
ENV_VAR = "NAS_GYM_CACHE"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_CHUNK = 500  # stays under SQLite's bound-variable limit in get_many

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE results (
    arch_key TEXT NOT NULL,
    context TEXT NOT NULL,
    arch TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    val_acc REAL NOT NULL,
    test_acc REAL,
    train_loss REAL,
    params INTEGER NOT NULL,
    flops INTEGER NOT NULL,
    train_seconds REAL NOT NULL,
    fidelity REAL NOT NULL,
    result TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (arch_key, context)
) WITHOUT ROWID;
"""

# Connections inherited through fork: kept referenced so the garbage collector never closes them
# in the child (see the module docstring).
_ABANDONED: list[sqlite3.Connection] = []


class CacheError(NasGymError, ValueError):
    """A cache file that cannot be used; one line naming the path and the fix."""


class CacheEntry(NamedTuple):
    """One stored result, as ``ResultCache.all`` yields it."""

    arch: str
    context: str
    result: EvalResult
    created: float


def resolve_path(spec: str | os.PathLike[str] | None) -> Path | None:
    """``"auto"`` -> ``$NAS_GYM_CACHE`` or ``~/.cache/nas-gym/evaluations.sqlite``; None -> None."""
    if spec is None:
        return None
    if str(spec) == "auto":
        return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH).expanduser()
    return Path(spec).expanduser()


def _json_float(x: float | None) -> float | None:
    """NaN and infinities become NULL in the query columns (SQLite has no NaN); the JSON copy keeps them."""
    return x if x is not None and math.isfinite(x) else None


class ResultCache:
    """Results stored in one SQLite file, shared safely between processes on one host.

    :param path: the SQLite file, or ``"auto"`` (see ``resolve_path``); its folder is created.
    :param timeout: seconds to wait for another process's write lock before giving up.
    :raises CacheError: the file exists but is not a nas-gym cache of this schema version.
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float = 30.0) -> None:
        resolved = resolve_path(path)
        if resolved is None:
            raise TypeError("ResultCache needs a path; open_cache(None) gives an in-memory cache")
        self.path = resolved
        self.timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._lock = threading.Lock()
        self._connection()  # fail at construction, not at the first evaluation

    # -- connection ------------------------------------------------------------------------
    def _fail(self, problem: str, fix: str) -> CacheError:
        return CacheError(f"cache {self.path}: {problem}; {fix}")

    def _not_ours(self, problem: str) -> CacheError:
        return self._fail(f"{problem}, so it is not a nas-gym cache and was left untouched",
                          "point evaluator.cache (or NAS_GYM_CACHE) at another file")

    def _inspect(self, conn: sqlite3.Connection) -> str:
        """``"empty"``, ``"ours"``, or raise CacheError naming what is wrong with the file."""
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            n_objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.OperationalError as e:  # locked past the timeout, unreadable: not a verdict on the file
            raise self._fail(f"cannot be read ({e})", "check its permissions and that no other program locks it") from None
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:  # a damaged schema's message may not even be UTF-8
            raise self._not_ours(f"cannot be read as SQLite ({' '.join(str(e).split())[:120]})") from None
        if app_id == 0 and n_objects == 0:
            return "empty"
        if app_id != APPLICATION_ID:
            owner = f"of another application (application_id {app_id:#x})" if app_id else "holding other tables"
            raise self._not_ours(f"is an SQLite database {owner}")
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except (sqlite3.DatabaseError, UnicodeDecodeError):
            row = None
        version = int(row[0]) if row and str(row[0]).isdigit() else None
        if version is None:
            raise self._fail("is marked as a nas-gym cache but has no schema version", "delete it to start afresh")
        if version > SCHEMA_VERSION:
            raise self._fail(f"was written by a newer nas-gym (schema {version}, this one reads {SCHEMA_VERSION})",
                             "upgrade nas-gym or point evaluator.cache at another file")
        if version < SCHEMA_VERSION:
            raise self._fail(f"uses the old schema {version} (this nas-gym reads {SCHEMA_VERSION})",
                             "delete it to start afresh or point evaluator.cache at another file")
        return "ours"

    def _check_readonly(self) -> None:
        """Inspect an existing file without any chance of writing to it."""
        if self.path.is_dir():  # a folder is a wrong setting, not a permissions problem
            raise self._fail("is a folder, not a file",
                             "point evaluator.cache (or NAS_GYM_CACHE) at a file inside it, e.g. "
                             f"{self.path / 'evaluations.sqlite'}")
        try:
            with self.path.open("rb") as f:
                header = f.read(len(_SQLITE_MAGIC))
        except FileNotFoundError:
            return
        except OSError as e:
            raise self._fail(f"cannot be read ({e.strerror})", "check its permissions") from None
        if not header:
            return  # an empty file is an empty database: adopt it
        if header != _SQLITE_MAGIC:
            raise self._not_ours("is not an SQLite database")
        try:
            # immutable: a read-only open of a WAL database would still create its -wal and -shm
            # files beside it; this probe reads the header and meta table only, which a writer
            # changes only when it creates the file (and _open inspects again under a lock)
            ro = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, timeout=self.timeout)
        except sqlite3.Error as e:
            raise self._fail(f"cannot be opened ({e})", "check its permissions") from None
        try:
            self._inspect(ro)
        finally:
            ro.close()

    @classmethod
    def check(cls, path: str | os.PathLike[str], timeout: float = 30.0) -> None:
        """Raise CacheError if ``path`` exists but is not a usable nas-gym cache; never writes.

        Opening a cache creates a missing file on the spot, so a command checks first and
        refuses bad input before it creates anything (the cache file, a run folder).
        """
        probe = cls.__new__(cls)
        probe.path, probe.timeout = resolve_path(path), timeout
        if probe.path is not None:
            probe._check_readonly()

    def _open(self) -> sqlite3.Connection:
        self._check_readonly()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise self._fail(f"cannot create its folder ({e.strerror})", "choose a writable location") from None
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise self._fail(f"cannot be opened ({e})", "choose a writable location") from None
        try:
            conn.execute("BEGIN IMMEDIATE")  # another process may be creating it right now: re-inspect under the lock
            try:
                if self._inspect(conn) == "empty":
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                                     [("schema_version", str(SCHEMA_VERSION)), ("created", repr(time.time()))])
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            # WAL lets readers proceed while one process writes; it can only be switched outside a
            # transaction, and a failure here (another process switching it) is harmless.
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; a lost last write is only a re-evaluation
            except sqlite3.OperationalError:
                pass
        except (sqlite3.Error, UnicodeDecodeError) as e:
            conn.close()
            if "locked" in str(e) or "busy" in str(e):
                raise self._fail(f"stayed locked by another process for {self.timeout:g} s ({e})",
                                 "wait for it to finish or point evaluator.cache at another file") from None
            raise self._fail(f"cannot be initialised ({e})", "check the file and its folder are writable") from None
        except CacheError:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection:
        """This process's connection: opened lazily, reopened after a fork."""
        pid = os.getpid()
        if self._conn is None or self._pid != pid:
            if self._conn is not None:
                _ABANDONED.append(self._conn)
            self._conn, self._pid = None, pid
            self._conn = self._open()
        return self._conn

    def close(self) -> None:
        """Close this process's connection (it reopens on next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            elif self._conn is not None:
                _ABANDONED.append(self._conn)
            self._conn = None

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        """Pickles as its path, so a cache can be handed to spawned workers (each opens its own connection)."""
        return {"path": str(self.path), "timeout": self.timeout}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["timeout"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"ResultCache({str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Turn a damaged file (bad pages, a row that is not a result) into one CacheError; a lock
        held past the timeout is said apart, since the file itself is fine."""
        try:
            yield
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise self._fail(f"stayed locked by another process for {self.timeout:g} s ({e})",
                                 "wait for it or point evaluator.cache at another file") from None
            raise self._damaged(e) from None
        except (sqlite3.DatabaseError, ValueError, TypeError, KeyError) as e:
            raise self._damaged(e) from None

    def _damaged(self, e: BaseException) -> CacheError:
        detail = " ".join(str(e).split())[:120]
        return self._fail(f"is damaged ({type(e).__name__}: {detail})", "delete it or point evaluator.cache (or "
                          "NAS_GYM_CACHE) at another file; its results will be trained again")

    @staticmethod
    def _decode(text: str) -> EvalResult:
        result = EvalResult.from_dict(json.loads(text))
        if not isinstance(result.val_acc, float | int) or not 0.0 <= result.val_acc <= 1.0:
            raise ValueError(f"a stored val_acc of {result.val_acc!r} is outside [0, 1]")
        return result

    def get(self, arch: Architecture, context: str) -> EvalResult | None:
        """The stored result of ``arch`` under ``context``, or None."""
        with self._lock, self._reading():
            row = self._connection().execute(
                "SELECT result FROM results WHERE arch_key = ? AND context = ?", (arch.key(), context)
            ).fetchone()
            return self._decode(row[0]) if row else None

    def get_many(self, archs: Sequence[Architecture], context: str) -> list[EvalResult | None]:
        """Stored results aligned with ``archs`` (None where missing), in one query per 500 keys."""
        keys = [a.key() for a in archs]
        found: dict[str, EvalResult] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock, self._reading():
            conn = self._connection()
            for i in range(0, len(unique), _CHUNK):
                chunk = unique[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT arch_key, result FROM results WHERE context = ? AND arch_key IN ({marks})", [context, *chunk]
                ).fetchall()
                found.update((k, self._decode(text)) for k, text in rows)
        return [found.get(k) for k in keys]

    def __len__(self) -> int:
        with self._lock, self._reading():
            return int(self._connection().execute("SELECT count(*) FROM results").fetchone()[0])

    def all(self, context: str | None = None) -> Iterator[CacheEntry]:
        """Every stored result (of one context, if given), oldest first.

        Rows are fetched before the first is yielded, so the caller may write to the cache while
        iterating without holding a read transaction open.
        """
        sql = "SELECT arch, context, result, created FROM results"
        args: tuple = ()
        if context is not None:
            sql, args = sql + " WHERE context = ?", (context,)
        with self._lock, self._reading():
            rows = self._connection().execute(sql + " ORDER BY created, arch_key", args).fetchall()
            entries = [CacheEntry(arch, ctx, self._decode(text), created) for arch, ctx, text, created in rows]
        yield from entries

    # -- writing ---------------------------------------------------------------------------
    def put(self, arch: Architecture, context: str, result: EvalResult) -> bool:
        """Store ``result`` unless one is already stored or it is not ``cacheable``; True if this call stored it."""
        return self.put_many([(arch, result)], context) == 1

    def put_many(self, items: Iterable[tuple[Architecture, EvalResult]], context: str) -> int:
        """Store several results in one transaction (all but those not ``cacheable``); returns how many were new."""
        now = time.time()
        rows = [
            (a.key(), context, a.text(), r.status, r.reason, r.val_acc, _json_float(r.test_acc),
             _json_float(r.train_loss), int(r.params), int(r.flops), r.train_seconds, r.fidelity,
             json.dumps(r.to_dict()), now)
            for a, r in items if r.cacheable
        ]
        if not rows:
            return 0
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                stored = 0
                try:
                    for row in rows:
                        stored += conn.execute(
                            "INSERT INTO results (arch_key, context, arch, status, reason, val_acc, test_acc, train_loss,"
                            " params, flops, train_seconds, fidelity, result, created)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                            " ON CONFLICT (arch_key, context) DO NOTHING",
                            row,
                        ).rowcount
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as e:
                raise self._fail(f"write failed ({e})", "check the disk and that no other program holds the file") from None
            except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
                raise self._damaged(e) from None
        return stored
