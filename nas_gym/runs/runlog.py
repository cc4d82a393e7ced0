"""The run record: every architecture a search evaluated, in memory and in ``evaluations.csv``.

The CSV is what ``nas-gym leaderboard``, ``compare`` and ``retrain`` read back, and what a
resumed search cuts back to its checkpoint. Everything that ranks ranks by the **reward** the
search optimised (for ``reward.kind: accuracy`` that is the validation accuracy itself), so a
cost-aware search hands back the architecture that did best on its own terms, not one that
breaks its constraint. The cost the reward used (parameters, MACs, or measured or predicted
milliseconds) is in the ``cost`` column, with its multiplier and whether it is within target. Rows are buffered and written by :meth:`RunLog.flush`,
which the search calls before each checkpoint and at the end: a stop loses no row a checkpoint
counted, and an instant evaluator is not slowed by one write per episode. With a table or
surrogate evaluator, ``sim_start`` and ``sim_finish`` hold when the evaluation started and its
result arrived on the simulated clock (``nas_gym.runs.workers``); empty otherwise.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas_gym.errors import NasGymError
from nas_gym.storage.atomic import atomic_write_text

EVALUATIONS_CSV = "evaluations.csv"
RUNTIME_JSON = "runtime.json"
CSV_FIELDS = ("episode", "arch", "val_acc", "reward", "params", "flops", "status", "reason", "evaluations", "cached",
              "cost", "cost_factor", "within_target", "sim_start", "sim_finish", "epochs")
OPTIONAL_FIELDS = ("sim_start", "sim_finish", "epochs")  # last in a row, may be missing from it


def record_runtime(run_dir: Path, config: Any) -> list[dict[str, Any]]:
    """Append where this start of the run trains (device, GPU name, CUDA and cuDNN versions,
    precision: ``nas_gym.training.numerics.runtime_record``; the backend and the workers' GPUs) to the run
    folder's ``runtime.json``, one entry per start: a resumed run may continue on another
    machine. Returns every entry."""
    from nas_gym.training.numerics import runtime_record  # torch: only once a run folder is being written

    path = run_dir / RUNTIME_JSON
    try:
        entries = json.loads(path.read_text()) if path.is_file() else []
    except (OSError, ValueError):
        entries = []
    ev = config.evaluator
    entry = {**runtime_record(config.runtime), "backend": ev.backend, "workers": ev.workers,
             "gpus_per_eval": ev.gpus_per_eval}
    entries = [*(entries if isinstance(entries, list) else []), entry]
    atomic_write_text(path, json.dumps(entries, indent=2) + "\n")
    return entries


@dataclass(frozen=True)
class Record:
    """One evaluated architecture, as the search saw it.

    :param cost: the cost the reward penalised (``reward.cost``: parameters, MACs, measured or
        predicted ms); None when the reward has no target (``accuracy``) or the row predates it.
    :param cost_factor: the multiplier the cost applied to the accuracy (1.0 without one).
    :param within_target: whether ``cost`` is at most ``reward.target`` (None without a target).
    :param sim_start: simulated seconds when its evaluation started (``nas_gym.runs.workers``);
        None without a simulated clock.
    :param sim_finish: simulated seconds when its result arrived; None without a simulated clock.
    :param epochs: the epochs a multi-fidelity episode asked its evaluator for (``reset(options=
        {"epochs": E})``); None: the evaluator's own budget.
    """

    episode: int
    arch: str
    val_acc: float
    reward: float
    params: int
    flops: int
    status: str
    reason: str
    cost: float | None = None
    cost_factor: float = 1.0
    within_target: bool | None = None
    sim_start: float | None = None
    sim_finish: float | None = None
    epochs: int | None = None

    @property
    def fidelity(self) -> float:
        """The epochs behind the reward: infinity for the evaluator's own (full) budget."""
        return math.inf if self.epochs is None else float(self.epochs)

    @property
    def rank_key(self) -> tuple[float, float, int]:
        """Best first: highest fidelity, then highest reward, then earliest (failures are
        filtered out before). Without multi-fidelity episodes, simply the highest reward."""
        return (-self.fidelity, -self.reward, self.episode)

    def beats(self, other: Record | None) -> bool:
        """Whether this record replaces ``other`` as the incumbent: it trained, and it was scored
        after more epochs, or after as many with a higher reward (the earlier of equals stays).
        A multi-fidelity run thus hands back its best result at the highest fidelity it reached,
        never a one-epoch score that happened to top the full-budget ones."""
        return self.status == "ok" and (other is None or (self.fidelity, self.reward) > (other.fidelity, other.reward))


def record_of(row: dict[str, str]) -> Record:
    """The :class:`Record` of one ``evaluations.csv`` row (rows written before the cost columns
    existed read with no cost).

    :raises ValueError: a value of the wrong type, or an impossible one (an accuracy outside
        [0, 1], a negative count): such a row is treated like one cut short by a kill.
    """
    cost, factor, within = row.get("cost") or "", row.get("cost_factor") or "", row.get("within_target") or ""
    start, finish = row.get("sim_start") or "", row.get("sim_finish") or ""
    epochs = row.get("epochs") or ""
    rec = Record(int(row["episode"]), row["arch"], float(row["val_acc"]), float(row["reward"]), int(row["params"]),
                 int(row["flops"]), row["status"], row["reason"], float(cost) if cost else None,
                 float(factor) if factor else 1.0, None if within == "" else within == "1",
                 float(start) if start else None, float(finish) if finish else None, int(epochs) if epochs else None)
    if not 0.0 <= rec.val_acc <= 1.0 or min(rec.episode, rec.params, rec.flops) < 0 or not math.isfinite(rec.reward):
        raise ValueError(f"impossible values in the row of episode {rec.episode}")
    return rec


class RunLogError(NasGymError, ValueError):
    """An ``evaluations.csv`` that cannot be read as text; one line naming it."""


def cost_fields(info: dict[str, Any]) -> tuple[float | None, float, bool | None]:
    """(cost, cost factor, within target) of an env's final ``info``: the cost only when the
    reward has a target, since only then did it enter the reward."""
    if "cost_target" not in info:
        return None, float(info.get("cost_factor", 1.0)), None
    cost = float(info["cost"])
    return cost, float(info["cost_factor"]), cost <= float(info["cost_target"])


def read_rows(path: Path) -> list[dict[str, str]]:
    """The complete rows of an ``evaluations.csv`` (none if missing); a row cut short by a kill
    mid-write is dropped."""
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise RunLogError(f"{path} is damaged ({type(e).__name__}: {' '.join(str(e).split())[:100]}); restore it from a "
                          "copy, or remove the run folder from the command") from None
    good = []
    for row in rows:
        for key in OPTIONAL_FIELDS:  # rows written without the simulated clock's or the fidelity's columns
            if row.get(key, "") is None:
                row[key] = ""
        try:
            if None not in row.values() and None not in row:
                record_of(row)
                good.append(row)
        except (KeyError, ValueError):
            pass
    return good


def read_records(run_dir: Path) -> list[Record]:
    """The records of a run folder's ``evaluations.csv``, in episode order."""
    return [record_of(r) for r in read_rows(run_dir / EVALUATIONS_CSV)]


def top(records: list[Record], k: int = 5) -> list[Record]:
    """The ``k`` best distinct architectures that trained by reward, best first (ties: earliest)."""
    seen: dict[str, Record] = {}
    for rec in records:
        if rec.beats(seen.get(rec.arch)):  # an architecture's highest-fidelity result stands for it
            seen[rec.arch] = rec
    return sorted(seen.values(), key=lambda r: r.rank_key)[:k]


def failures(records: list[Record]) -> list[Record]:
    return [r for r in records if r.status != "ok"]


def best_of(records: list[Record]) -> Record | None:
    """The incumbent by :meth:`Record.beats` (the rule :meth:`RunLog.add` follows as records
    come): the first record with the highest reward among those that trained, at the highest
    fidelity any reached."""
    best = None
    for rec in records:
        if rec.beats(best):
            best = rec
    return best


class RunLog:
    """The record of one search: counters, every evaluation, the best so far, and the CSV.

    :param run_dir: where ``evaluations.csv`` goes; None keeps the record in memory only.
    :param resume: the :meth:`state` saved at a checkpoint of this run folder (None: a new run).
        The CSV is cut back to the rows that checkpoint counted, so the episodes a resumed
        search plays again are recorded once.
    """

    def __init__(self, run_dir: Path | None = None, resume: dict[str, Any] | None = None) -> None:
        self.path = None if run_dir is None else run_dir / EVALUATIONS_CSV
        self.episodes = 0
        self.invalid_episodes = 0
        self.records: list[Record] = []
        self.best: Record | None = None
        self._hits_seen = 0
        self._pending: list[tuple[Any, ...]] = []
        self._file = None
        if self.path is None:
            return
        if resume is not None:
            self._restore(resume)
        new = not self.path.exists()
        self._file = self.path.open("a", newline="")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(CSV_FIELDS)
            self._file.flush()  # a run folder read before the first checkpoint shows its columns

    def add_invalid(self) -> None:
        """An episode ended by a forbidden action: counted, nothing evaluated, no row."""
        self.episodes += 1
        self.invalid_episodes += 1

    def add(self, reward: float, info: dict[str, Any], evaluations: int, cache_hits: int) -> tuple[Record, bool]:
        """Record one evaluated episode; returns its record and whether it is a new best.

        :param evaluations: the evaluator's count after it (the ``evaluations`` column).
        :param cache_hits: the evaluator's hit count after it: ``cached`` is 1 when it moved since
            the last record (batched evaluations can move it by several; a hint for humans).
        """
        self.episodes += 1
        rec = Record(self.episodes, info["arch"], float(info["val_acc"]), float(reward), int(info["params"]),
                     int(info["flops"]), info["status"], info["reason"], *cost_fields(info),
                     info.get("sim_start"), info.get("sim_finish"), info.get("epochs"))
        self.records.append(rec)
        new_best = rec.beats(self.best)
        if new_best:
            self.best = rec
        if self._file is not None:
            self._pending.append((rec.episode, rec.arch, f"{rec.val_acc:.6f}", f"{rec.reward:.6f}", rec.params,
                                  rec.flops, rec.status, rec.reason, evaluations, int(cache_hits > self._hits_seen),
                                  "" if rec.cost is None else f"{rec.cost:.10g}", f"{rec.cost_factor:.6f}",
                                  "" if rec.within_target is None else int(rec.within_target),
                                  *("" if t is None else f"{t:.10g}" for t in (rec.sim_start, rec.sim_finish)),
                                  "" if rec.epochs is None else rec.epochs))
        self._hits_seen = cache_hits
        return rec, new_best

    def flush(self) -> None:
        """Write the buffered rows and fsync: called before a checkpoint, so the CSV is never
        behind the checkpoint that a resume will trust."""
        if self._file is None:
            return
        self._csv.writerows(self._pending)
        self._pending = []
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None

    def state(self) -> dict[str, Any]:
        """What a resumed search needs besides the CSV rows (JSON-ready)."""
        return {"episodes": self.episodes, "invalid_episodes": self.invalid_episodes, "records": len(self.records),
                "hits_seen": self._hits_seen}

    def _restore(self, state: dict[str, Any]) -> None:
        """Take back the counters of ``state`` and the CSV rows it counted; rewrite the CSV without
        the rest (rows of episodes that will be played again, a line cut by a kill)."""

        self.episodes = int(state.get("episodes", 0))
        self.invalid_episodes = int(state.get("invalid_episodes", 0))
        self._hits_seen = int(state.get("hits_seen", 0))
        assert self.path is not None
        rows = read_rows(self.path)[: int(state.get("records", 0))]
        rows = [r for r in rows if int(r["episode"]) <= self.episodes]
        self.records = [record_of(r) for r in rows]
        self.best = best_of(self.records)
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, CSV_FIELDS, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, text.getvalue())
