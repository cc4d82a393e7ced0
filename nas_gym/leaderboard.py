"""The leaderboard of one or several runs, read back from their ``evaluations.csv`` files.

Reading the CSV (not the cache) means a leaderboard shows what the runs saw, and works on run
folders copied from another machine.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from nas_gym.runlog import EVALUATIONS_CSV, read_rows


@dataclass(frozen=True)
class Entry:
    arch: str
    val_acc: float
    params: int
    flops: int
    evaluations: int  # times this architecture was evaluated across the runs read
    status: str
    reason: str
    run: str
    fidelity: str = ""  # "high" when a multi-fidelity search confirmed it with longer training

CONFIRMED_CSV = "confirmed.csv"  # written by multi-fidelity searches: arch, val_acc, low_val_acc, epochs


class LeaderboardError(ValueError):
    """A path that is not a run folder (nor a folder of run folders)."""


def run_csvs(paths: list[Path]) -> list[Path]:
    """``evaluations.csv`` of each path: a run folder, or a folder holding run folders."""
    found: list[Path] = []
    for path in paths:
        if (path / EVALUATIONS_CSV).is_file():
            found.append(path / EVALUATIONS_CSV)
        elif path.is_dir() and (nested := sorted(path.glob(f"**/{EVALUATIONS_CSV}"))):
            found.extend(nested)
        else:
            raise LeaderboardError(f"{path}: no evaluations.csv here or below; give a run folder made by nas-gym search")
    return found


def read_entries(paths: list[Path]) -> tuple[list[Entry], list[Entry]]:
    """(distinct architectures that trained, best first; failures), across all runs."""
    best: dict[str, Entry] = {}
    counts: dict[str, int] = {}
    failures: dict[str, Entry] = {}
    for path in run_csvs(paths):
        for row in read_rows(path):  # a row cut short by a kill is skipped
            arch = row["arch"]
            counts[arch] = counts.get(arch, 0) + 1
            entry = Entry(arch, float(row["val_acc"]), int(row["params"]), int(row["flops"]), 0, row["status"],
                          row["reason"], path.parent.name)
            target = best if row["status"] == "ok" else failures
            if arch not in target or entry.val_acc > target[arch].val_acc:
                target[arch] = entry
        for arch, val_acc in _confirmed(path.parent).items():
            if arch in best:  # the highest fidelity seen replaces the reward's short-training score
                best[arch] = Entry(**{**best[arch].__dict__, "val_acc": val_acc, "fidelity": "high"})
    def with_count(e: Entry) -> Entry:
        return Entry(**{**e.__dict__, "evaluations": counts[e.arch]})

    # Confirmed entries first: a lucky short run must not outrank a checked long one.
    ok = sorted((with_count(e) for e in best.values()), key=lambda e: (e.fidelity != "high", -e.val_acc, e.params, e.arch))
    return ok, [with_count(e) for e in failures.values()]


def _confirmed(run_dir: Path) -> dict[str, float]:
    path = run_dir / CONFIRMED_CSV
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = {row["arch"]: float(row["val_acc"]) for row in csv.DictReader(f) if row["status"] == "ok"}
    except (UnicodeDecodeError, csv.Error, KeyError, ValueError, TypeError) as e:
        raise LeaderboardError(f"{path} is damaged ({type(e).__name__}); restore it or remove the run folder "
                               "from the command") from None
    if not all(0.0 <= v <= 1.0 for v in rows.values()):
        raise LeaderboardError(f"{path} holds a val_acc outside [0, 1]; restore it or remove the run folder from the command")
    return rows


def pareto_front(entries: list[Entry]) -> list[Entry]:
    """Entries no other entry beats on both accuracy (higher) and parameters (fewer)."""
    front, best_acc = [], -1.0
    for e in sorted(entries, key=lambda e: (e.params, -e.val_acc)):
        if e.val_acc > best_acc:
            front.append(e)
            best_acc = e.val_acc
    return front
