"""Recording a search: TensorBoard scalars, a CSV of every evaluation, and the leaderboard.

:class:`RecordEpisodes` wraps the env (or each sub-env of a vector env) and reports to one
:class:`SearchLog`. It only reads what the env already returns (episode infos) and the
evaluator's statistics, and writes nothing back, so every agent leaves the same curves and CSV.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

CSV_FIELDS = ("episode", "arch", "val_acc", "reward", "params", "flops", "status", "reason", "evaluations", "cached")


@dataclass(frozen=True)
class Record:
    """One evaluated architecture, as the search saw it."""

    episode: int
    arch: str
    val_acc: float
    reward: float
    params: int
    flops: int
    status: str
    reason: str


class SearchLog:
    """The record of one search, shared by every env of the run (one, or the sub-envs of a
    vector env).

    :param run_dir: where the TensorBoard events and ``evaluations.csv`` go; None records in
        memory only.
    :param on_episode: called after each recorded episode with the log (progress bars).
    """

    def __init__(self, run_dir: Path | None = None, on_episode: Callable[[SearchLog], None] | None = None) -> None:
        self.run_dir = run_dir
        self.on_episode = on_episode
        self.evaluator = None  # set by the first RecordEpisodes wrapper: the run's evaluator
        self.episodes = 0
        self.invalid_episodes = 0
        self.records: list[Record] = []
        self.best: Record | None = None
        self.latest: dict[str, float] = {}
        self._hits_seen = 0
        self._writer = None
        self._csv_file = None
        if run_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            run_dir.mkdir(parents=True, exist_ok=True)
            self._writer = SummaryWriter(str(run_dir))
            path = run_dir / "evaluations.csv"
            new = not path.exists()
            self._csv_file = path.open("a", newline="")
            self._csv = csv.writer(self._csv_file)
            if new:
                self._csv.writerow(CSV_FIELDS)

    def record_scalar(self, tag: str, value: float) -> None:
        """Lets an agent add its own curve (Q-learning's ``nas/epsilon``) on the episode axis."""
        self.latest[tag] = float(value)
        if self._writer is not None:
            self._writer.add_scalar(tag, value, self.episodes)

    def episode_end(self, reward: float, info: dict[str, Any]) -> None:
        self.episodes += 1
        if "val_acc" not in info:  # ended by a forbidden action: nothing was evaluated
            self.invalid_episodes += 1
            self.record_scalar("nas/invalid_episodes", self.invalid_episodes)
        else:
            rec = Record(self.episodes, info["arch"], float(info["val_acc"]), reward, int(info["params"]),
                         int(info["flops"]), info["status"], info["reason"])
            self.records.append(rec)
            stats = self.evaluator.stats
            if rec.status == "ok" and (self.best is None or rec.val_acc > self.best.val_acc):
                self.best = rec
                if self._writer is not None:
                    self._writer.add_text("nas/best_arch", f"`{rec.arch}`: val_acc {rec.val_acc:.4f}, "
                                          f"{rec.params:,} params (episode {rec.episode})", self.episodes)
            for tag, value in (("nas/val_acc", rec.val_acc), ("nas/reward", reward), ("nas/params", rec.params),
                               ("nas/flops", rec.flops), ("nas/best_val_acc", self.best.val_acc if self.best else 0.0),
                               ("nas/evaluations", stats.evaluations), ("nas/cache_hit_rate", stats.cache_hit_rate),
                               ("nas/failures", stats.failures)):
                self.record_scalar(tag, value)
            if self._csv_file is not None:
                # "cached": the evaluator's hit count moved since the last record (batched
                # evaluations can move it by several; it is a hint for humans, not for agents)
                cached = int(stats.cache_hits > self._hits_seen)
                self._csv.writerow([rec.episode, rec.arch, f"{rec.val_acc:.6f}", f"{reward:.6f}", rec.params,
                                    rec.flops, rec.status, rec.reason, stats.evaluations, cached])
                self._csv_file.flush()
            self._hits_seen = stats.cache_hits
        if self.on_episode is not None:
            self.on_episode(self)

    def top(self, k: int = 5) -> list[Record]:
        """The ``k`` best distinct architectures that trained, best first (ties: earliest)."""
        seen: dict[str, Record] = {}
        for rec in self.records:
            if rec.status == "ok" and rec.arch not in seen:
                seen[rec.arch] = rec
        return sorted(seen.values(), key=lambda r: (-r.val_acc, r.episode))[:k]

    def failures(self) -> list[Record]:
        return [r for r in self.records if r.status != "ok"]

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._csv_file is not None:
            self._csv_file.close()
            self._csv_file = None


class RecordEpisodes(gym.Wrapper):
    """Reports every finished episode of the wrapped env to a :class:`SearchLog`."""

    def __init__(self, env: gym.Env, log: SearchLog) -> None:
        super().__init__(env)
        self.log = log
        if log.evaluator is None:
            log.evaluator = env.unwrapped.evaluator

    def record_scalar(self, tag: str, value: float) -> None:
        self.log.record_scalar(tag, value)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            self.log.episode_end(float(reward), info)
        return obs, reward, terminated, truncated, info
