"""Recording a search: TensorBoard scalars, a CSV of every evaluation, and the leaderboard.

:class:`RecordEpisodes` wraps the env (or each sub-env of a vector env) and reports to one
:class:`SearchLog`. It only reads what the env already returns (episode infos) and the
evaluator's statistics, and writes nothing back, so every agent leaves the same curves and CSV.
"""

from __future__ import annotations

import csv
import os
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
    :param resume: the :meth:`state` saved at a checkpoint of this run folder (``{}``: start
        over). The CSV is cut back to the episodes that checkpoint counted and TensorBoard
        hides what was written after it, so the episodes a resumed search plays again are
        recorded once, on the same step numbers.
    """

    def __init__(self, run_dir: Path | None = None, on_episode: Callable[[SearchLog], None] | None = None,
                 hparams: dict[str, Any] | None = None, figure_every: int = 50, stage_size: int = 25,
                 resume: dict[str, Any] | None = None) -> None:
        self.run_dir = run_dir
        self.on_episode = on_episode
        self.hparams = dict(hparams or {})
        self.figure_every = figure_every
        self.stage_size = stage_size
        self._stage_rewards: list[float] = []
        self._stages = 0
        self._acc_by_epsilon: dict[float, list[float]] = {}
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
            path = run_dir / "evaluations.csv"
            if resume is not None:
                self._restore(path, resume)
            # purge_step: TensorBoard drops the events a killed run wrote past the checkpoint
            self._writer = SummaryWriter(str(run_dir), purge_step=None if resume is None else self.episodes + 1)
            new = not path.exists()
            self._csv_file = path.open("a", newline="")
            self._csv = csv.writer(self._csv_file)
            if new:
                self._csv.writerow(CSV_FIELDS)

    def record_scalar(self, tag: str, value: float) -> None:
        """Lets an agent add its own curve (Q-learning's ``nas/epsilon``) on the episode axis."""
        if tag == "nas/epsilon" and self.records and self.latest.get(tag, value) != value:
            self._flush_stage()  # a new epsilon starts a new stage, as in MetaQNN's figure
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
            self._stage_rewards.append(reward)
            if "nas/epsilon" in self.latest:
                self._acc_by_epsilon.setdefault(self.latest["nas/epsilon"], []).append(rec.val_acc)
            elif len(self._stage_rewards) >= self.stage_size:
                self._flush_stage()
            if self.figure_every and len(self.records) % self.figure_every == 0:
                self._pareto_figure()
        if self.on_episode is not None:
            self.on_episode(self)

    def state(self) -> dict[str, Any]:
        """What a resumed search needs besides the CSV rows: counters and the running tallies
        of the stage and epsilon figures (JSON-ready)."""
        return {"episodes": self.episodes, "invalid_episodes": self.invalid_episodes, "records": len(self.records),
                "hits_seen": self._hits_seen, "stages": self._stages, "stage_rewards": self._stage_rewards,
                "acc_by_epsilon": [[eps, accs] for eps, accs in self._acc_by_epsilon.items()], "latest": self.latest}

    def _restore(self, path: Path, state: dict[str, Any]) -> None:
        """Take back the counters of ``state`` and the CSV rows it counted; rewrite the CSV without
        the rest (rows of episodes that will be played again, a line cut by a kill)."""
        self.episodes = int(state.get("episodes", 0))
        self.invalid_episodes = int(state.get("invalid_episodes", 0))
        self._hits_seen = int(state.get("hits_seen", 0))
        self._stages = int(state.get("stages", 0))
        self._stage_rewards = [float(r) for r in state.get("stage_rewards", [])]
        self._acc_by_epsilon = {float(e): [float(a) for a in accs] for e, accs in state.get("acc_by_epsilon", [])}
        self.latest = {k: float(v) for k, v in state.get("latest", {}).items()}
        rows = read_rows(path)[: int(state.get("records", 0))]
        rows = [r for r in rows if int(r["episode"]) <= self.episodes]
        self.records = [record_of(r) for r in rows]
        for rec in self.records:
            if rec.status == "ok" and (self.best is None or rec.val_acc > self.best.val_acc):
                self.best = rec
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def flush(self) -> None:
        """Put everything recorded so far on disk (fsync for the CSV): called before a checkpoint,
        so the CSV is never behind the checkpoint that a resume will trust."""
        if self._csv_file is not None:
            self._csv_file.flush()
            os.fsync(self._csv_file.fileno())
        if self._writer is not None:
            self._writer.flush()

    def top(self, k: int = 5) -> list[Record]:
        """The ``k`` best distinct architectures that trained, best first (ties: earliest)."""
        seen: dict[str, Record] = {}
        for rec in self.records:
            if rec.status == "ok" and rec.arch not in seen:
                seen[rec.arch] = rec
        return sorted(seen.values(), key=lambda r: (-r.val_acc, r.episode))[:k]

    def failures(self) -> list[Record]:
        return [r for r in self.records if r.status != "ok"]

    def _flush_stage(self) -> None:
        """Histogram of the rewards of the stage just ended (a block of episodes, or one
        epsilon of Q-learning's schedule)."""
        if self._writer is not None and self._stage_rewards:
            import numpy as np

            self._writer.add_histogram("nas/reward_by_stage", np.asarray(self._stage_rewards), self._stages)
        self._stages += 1
        self._stage_rewards = []

    def _pareto_figure(self) -> None:
        if self._writer is None or not self.records:
            return
        from nas_gym.figures import pareto_figure
        from nas_gym.leaderboard import Entry, pareto_front

        ok = [r for r in self.records if r.status == "ok"]
        entries = [Entry(r.arch, r.val_acc, r.params, r.flops, 1, r.status, "", "") for r in ok]
        front = [(e.params, e.val_acc) for e in pareto_front(entries)]
        fig = pareto_figure([(r.params, r.val_acc) for r in ok], front, f"after {len(self.records)} evaluations")
        self._writer.add_figure("nas/pareto_front", fig, self.episodes)

    def _final_summaries(self) -> None:
        """Figures and the HParams entry, written once when the search ends."""
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        from nas_gym.figures import architecture_figure
        from nas_gym.space import Architecture

        self._flush_stage()
        self._pareto_figure()
        for eps, accs in sorted(self._acc_by_epsilon.items(), reverse=True):
            # MetaQNN's figure: mean sampled accuracy per epsilon; x = 100 * (1 - epsilon)
            self._writer.add_scalar("nas/mean_val_acc_by_epsilon", sum(accs) / len(accs), round(100 * (1 - eps)))
        if self.best is not None:
            title = f"best: val acc {self.best.val_acc:.4f}, {self.best.params:,} params"
            self._writer.add_figure("nas/best_architecture", architecture_figure(Architecture.parse(self.best.arch), title),
                                    self.episodes)
        if self.hparams:
            clean = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in self.hparams.items()}
            metrics = {"hparam/best_val_acc": self.best.val_acc if self.best else 0.0,
                       "hparam/evaluations": float(len(self.records))}
            exp, ssi, sei = hparams_summary(clean, metrics)
            file_writer = self._writer._get_file_writer()
            for summary in (exp, ssi, sei):
                file_writer.add_summary(summary)
            for tag, value in metrics.items():
                self._writer.add_scalar(tag, value, self.episodes)

    def close(self) -> None:
        if self._writer is not None:
            self._final_summaries()
            self._writer.close()
            self._writer = None
        if self._csv_file is not None:
            self._csv_file.close()
            self._csv_file = None


def read_rows(path: Path) -> list[dict[str, str]]:
    """The complete rows of an ``evaluations.csv`` (none if missing); a row cut short by a kill
    mid-write is dropped."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    good = []
    for row in rows:
        try:
            if None not in row.values() and None not in row:
                record_of(row)
                good.append(row)
        except (KeyError, ValueError):
            pass
    return good


def record_of(row: dict[str, str]) -> Record:
    """The :class:`Record` of one ``evaluations.csv`` row."""
    return Record(int(row["episode"]), row["arch"], float(row["val_acc"]), float(row["reward"]), int(row["params"]),
                  int(row["flops"]), row["status"], row["reason"])


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
