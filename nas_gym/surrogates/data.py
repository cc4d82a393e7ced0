"""The surrogate's training data: real trainings of one preset's architectures, as shipped.

File format (gzip'd JSON lines, like the tables): line 1 is a header (format, preset, the
config's sections that decide results, seeds, the trainer context hash per seed, trainer
version, the collection plan, library versions); each further line is one architecture::

    {"arch": "conv3-16|maxpool", "sources": ["uniform"], "params": 1234, "flops": 5678,
     "status": ["ok", null, ...], "reason": ["", null, ...], "val_acc": [0.61, null, ...],
     "train_loss": [1.1, null, ...], "train_seconds": [0.41, null, ...]}

with one list entry per header seed (null: not trained under that seed). ``sources`` says who
proposed the architecture (``uniform`` or an agent's name), for the leave-one-source-out check.

The data's hash (:func:`data_hash`) covers the rows only, so a model records exactly which
trainings it was fitted to, whatever the header's dates say. No torch here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import io
import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_gym.config import Config, ConfigError
from nas_gym.results import TRAINER_VERSION
from nas_gym.storage.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from nas_gym.evaluators.training import TrainingEvaluator
    from nas_gym.spaces.base import Architecture
    from nas_gym.storage.cache import Cache

DATA_FORMAT, DATA_FORMAT_VERSION = "nas-gym-surrogate-data", 1
SURROGATE_DIR = Path(__file__).resolve().parent
DATA_SUFFIX = "-data.jsonl.gz"
SOURCES = ("uniform", "evolution", "qlearning", "reinforce")
_FIELDS = ("status", "reason", "val_acc", "train_loss", "train_seconds")


@dataclass(frozen=True)
class DataPlan:
    """What ``scripts/build_surrogate.py`` trains per round (see ``nas_gym.runs.surrogate_build``)."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    uniform: int = 50
    noise: int = 10
    episodes: int = 100
    agents: tuple[str, ...] = ("evolution", "qlearning", "reinforce")
    proposals: int = 2
    sample_seed: int = 0
    rounds: int = 40
    extra_uniform: int = 0


def default_data_path(preset: str) -> Path:
    return SURROGATE_DIR / f"{preset}{DATA_SUFFIX}"


def _finite(x: float | None, digits: int | None = None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(x, digits) if digits is not None else x


def collect_rows(archs: Mapping[str, Architecture], sources: Mapping[str, Sequence[str]], cache: Cache,
                 evaluators: Mapping[int, TrainingEvaluator]) -> list[dict[str, Any]]:
    """One row per architecture with at least one stored training, in order of first proposal."""
    seeds = list(evaluators)
    order = list(archs.values())
    stored = {s: cache.get_many(order, evaluators[s].context) for s in seeds}
    rows = []
    for i, arch in enumerate(order):
        results = [stored[s][i] for s in seeds]
        if all(r is None for r in results):
            continue
        first = next(r for r in results if r is not None)
        rows.append({
            "arch": arch.text(), "sources": list(sources[arch.text()]),
            "params": int(first.params), "flops": int(first.flops),
            "status": [None if r is None else r.status for r in results],
            "reason": [None if r is None else r.reason for r in results],
            "val_acc": [None if r is None else _finite(r.val_acc) for r in results],
            "train_loss": [None if r is None else _finite(r.train_loss, 5) for r in results],
            "train_seconds": [None if r is None else _finite(r.train_seconds, 4) for r in results],
        })
    return rows


def data_hash(rows: Sequence[dict[str, Any]]) -> str:
    """Digest of the rows, in order: the identity of the data a model was fitted to."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    return h.hexdigest()[:20]


def write_data(path: str | os.PathLike[str], config: Config, plan: DataPlan, rows: Sequence[dict[str, Any]],
               rounds_done: int, numerics: Mapping[str, Any] | None = None) -> int:
    """Write header and rows atomically; returns the bytes written.

    :param numerics: what besides the recipe decided the rows' numbers, as the cache key has it
        (``nas_gym.training.numerics.numerics_identity``; empty for CPU fp32 training, the default).
    """
    import torch

    counts = {src: sum(src in r["sources"] for r in rows) for src in SOURCES}
    header = {
        "format": DATA_FORMAT, "format_version": DATA_FORMAT_VERSION, "preset": config.name,
        "config": config.model_dump(mode="json", include={"space", "data", "train"}),
        "seeds": list(plan.seeds),
        "context_hashes": {str(s): config.model_copy(update={"train": config.train.model_copy(update={"seed": s})})
                           .context_hash() for s in plan.seeds},
        "trainer_version": TRAINER_VERSION, "numerics": dict(numerics or {}), "plan": dataclasses.asdict(plan), "rounds_done": rounds_done,
        "architectures": len(rows), "by_source": counts, "data_hash": data_hash(rows),
        "clock": "train_seconds are the worker's CPU seconds per evaluation (one torch thread)",
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        for obj in (header, *rows):
            gz.write(json.dumps(obj, separators=(",", ":"), allow_nan=False).encode() + b"\n")
    atomic_write_bytes(path, buf.getvalue())
    return len(buf.getvalue())


def read_data(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Header and rows; checks the format and that the rows are the ones the header hashed.

    :raises ConfigError: unreadable, another format, or rows that do not match the header's hash.
    """
    fix = "collect it again with scripts/build_surrogate.py --export-only"
    try:
        with gzip.open(path, "rt") as f:
            header = json.loads(f.readline())
            rows = [json.loads(line) for line in f if line.strip()]
    except (OSError, EOFError, json.JSONDecodeError) as e:
        raise ConfigError(f"surrogate data {path}: cannot be read ({type(e).__name__}); {fix}") from None
    if not isinstance(header, dict) or header.get("format") != DATA_FORMAT:
        raise ConfigError(f"surrogate data {path}: not a nas-gym surrogate data file; {fix}")
    if header.get("format_version") != DATA_FORMAT_VERSION:
        raise ConfigError(f"surrogate data {path}: format version {header.get('format_version')}, this nas-gym "
                          f"reads {DATA_FORMAT_VERSION}; {fix}")
    if data_hash(rows) != header.get("data_hash"):
        raise ConfigError(f"surrogate data {path}: its rows do not match the header's data_hash; {fix}")
    return header, rows
