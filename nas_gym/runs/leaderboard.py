"""The leaderboard of one or several runs, read back from their ``evaluations.csv`` files.

Reading the CSV (not the cache) means a leaderboard shows what the runs saw, and works on run
folders copied from another machine. Entries rank by the reward the runs optimised (the
validation accuracy unless the reward is cost-aware), so a constraint's winner is one that
meets it. Runs of different presets or evaluators score on different scales; ``--preset`` and
``--evaluator`` keep the runs of one kind (read from each run's ``config.yaml``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import yaml

from nas_gym.errors import NasGymError
from nas_gym.runs.runlog import EVALUATIONS_CSV, read_rows, record_of


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
    reward: float = 0.0  # what the run optimised: val_acc times the cost factor
    cost: float | None = None  # the cost the reward used (None: the reward had no target)
    within_target: bool | None = None
    epochs: int | None = None  # a multi-fidelity agent's episode: the epochs behind its score (None: full budget)

    @property
    def depth(self) -> float:
        """How far training went for this score: a result after more epochs outranks one after fewer."""
        return float("inf") if self.epochs is None else float(self.epochs)


@dataclass(frozen=True)
class RunInfo:
    """What a run folder's ``config.yaml`` says about how its scores were made (empty if absent)."""

    preset: str = ""
    evaluator: str = ""
    reward: str = ""  # e.g. "accuracy" or "constraint params <= 2000"

    @classmethod
    def of(cls, run_dir: Path) -> RunInfo:
        try:
            cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        except (OSError, yaml.YAMLError):
            return cls()
        if not isinstance(cfg, dict):
            return cls()
        reward = cfg.get("reward") or {}
        text = str(reward.get("kind", ""))
        if reward.get("kind") not in (None, "accuracy") and reward.get("target") is not None:
            text += f" {reward.get('cost')} <= {reward.get('target'):g}"
        return cls(str(cfg.get("name", "")), str((cfg.get("evaluator") or {}).get("kind", "")), text)

CONFIRMED_CSV = "confirmed.csv"  # written by multi-fidelity searches: arch, val_acc, low_val_acc, epochs


class LeaderboardError(NasGymError, ValueError):
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


def select_runs(paths: list[Path], preset: str | None = None, evaluator: str | None = None) -> list[Path]:
    """The ``evaluations.csv`` of the runs under ``paths`` whose preset and evaluator match (None: any)."""
    found = run_csvs(paths)
    keep = [p for p in found if (preset is None or RunInfo.of(p.parent).preset == preset)
            and (evaluator is None or RunInfo.of(p.parent).evaluator == evaluator)]
    if not keep:
        wanted = ", ".join(f"{k} {v!r}" for k, v in (("preset", preset), ("evaluator", evaluator)) if v is not None)
        seen = sorted({f"{i.preset}/{i.evaluator}" for i in (RunInfo.of(p.parent) for p in found)})
        raise LeaderboardError(f"no run with {wanted} among {len(found)} runs (preset/evaluator there: "
                               f"{', '.join(seen)}); drop or change --preset / --evaluator")
    return keep


def read_entries(paths: list[Path], preset: str | None = None, evaluator: str | None = None
                 ) -> tuple[list[Entry], list[Entry]]:
    """(distinct architectures that trained, best reward first; failures), across the runs
    under ``paths`` of ``preset`` and ``evaluator`` (None: all)."""
    best: dict[str, Entry] = {}
    counts: dict[str, int] = {}
    failures: dict[str, Entry] = {}
    for path in select_runs(paths, preset, evaluator):
        for row in read_rows(path):  # a row cut short by a kill is skipped
            rec = record_of(row)
            arch = rec.arch
            counts[arch] = counts.get(arch, 0) + 1
            entry = Entry(arch, rec.val_acc, rec.params, rec.flops, 0, rec.status, rec.reason, path.parent.name,
                          reward=rec.reward, cost=rec.cost, within_target=rec.within_target, epochs=rec.epochs)
            target = best if rec.status == "ok" else failures
            # an architecture's result after the most epochs stands for it (Record.beats), then the best reward
            if arch not in target or (entry.depth, entry.reward) > (target[arch].depth, target[arch].reward):
                target[arch] = entry
        for arch, val_acc in _confirmed(path.parent).items():
            if arch in best:  # the highest fidelity seen replaces the reward's short-training score
                old = best[arch]
                factor = old.reward / old.val_acc if old.val_acc > 0 else 1.0  # the cost term stays
                best[arch] = Entry(**{**old.__dict__, "val_acc": val_acc, "reward": val_acc * factor, "fidelity": "high"})
    def with_count(e: Entry) -> Entry:
        return Entry(**{**e.__dict__, "evaluations": counts[e.arch]})

    # Confirmed entries first, and results after more epochs before fewer: a lucky short run must
    # not outrank a checked long one.
    ok = sorted((with_count(e) for e in best.values()),
                key=lambda e: (e.fidelity != "high", -e.depth, -e.reward, e.params, e.arch))
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
