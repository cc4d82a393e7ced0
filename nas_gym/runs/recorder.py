"""Recording a search: each finished episode goes to the run record and to TensorBoard.

:class:`RecordEpisodes` wraps the env (or each sub-env of a vector env) and reports to one
:class:`SearchLog`. It only reads what the env already returns (episode infos) and the
evaluator's statistics, and writes nothing back, so every agent leaves the same curves and CSV.
The run record (``nas_gym.runs.runlog``) and the event stream (``nas_gym.runs.tb``) both buffer their
writes until :meth:`SearchLog.flush`, which the search calls before each checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym

from nas_gym.runs.runlog import Record, RunLog, failures, top


class SearchLog:
    """The record of one search, shared by every env of the run (one, or the sub-envs of a
    vector env).

    :param run_dir: where the TensorBoard events and ``evaluations.csv`` go; None records in
        memory only.
    :param on_episode: called after each recorded episode with the log (progress bars).
    :param hparams: the run's settings, for TensorBoard's HParams tab.
    :param figure_seconds: least time between two Pareto figures at checkpoints (None: the
        default of ``nas_gym.runs.tb``); one is always drawn at the end.
    :param resume: the :meth:`state` saved at a checkpoint of this run folder (None: start
        over). The CSV is cut back to the episodes that checkpoint counted and TensorBoard
        hides what was written after it, so the episodes a resumed search plays again are
        recorded once, on the same step numbers.
    """

    def __init__(self, run_dir: Path | None = None, on_episode: Callable[[SearchLog], None] | None = None,
                 hparams: dict[str, Any] | None = None, figure_seconds: float | None = None,
                 resume: dict[str, Any] | None = None, defer: bool = False) -> None:
        self.on_episode = on_episode
        self.evaluator: Any = None  # set by the first RecordEpisodes wrapper: the run's evaluator
        self.tensorboard = None
        self._open_args = (run_dir, hparams, figure_seconds, resume)
        self.run = RunLog(None)
        if not defer:
            self.open()

    def open(self) -> None:
        """Start writing to the run folder (the CSV cut back to the checkpoint, TensorBoard).

        A resumed search calls it only once its checkpoint has loaded (``defer=True`` until
        then), so a resume that fails leaves the folder as it was.
        """
        run_dir, hparams, figure_seconds, resume = self._open_args
        self.run = RunLog(run_dir, resume)
        if run_dir is not None:
            from nas_gym.runs.tb import FIGURE_SECONDS, TensorBoardLog

            self.tensorboard = TensorBoardLog(
                run_dir, hparams, purge_step=None if resume is None else self.run.episodes + 1,
                figure_seconds=FIGURE_SECONDS if figure_seconds is None else figure_seconds, resume=resume)

    @property
    def episodes(self) -> int:
        return self.run.episodes

    @property
    def records(self) -> list[Record]:
        return self.run.records

    @property
    def best(self) -> Record | None:
        return self.run.best

    def record_scalar(self, tag: str, value: float, step: int | None = None) -> None:
        """Lets an agent add its own curve (``nas/epsilon``, ``nas/baseline``); the step is the
        number of episodes finished unless given."""
        if self.tensorboard is not None:
            self.tensorboard.scalar(tag, value, self.run.episodes if step is None else step)

    def episode_end(self, reward: float, info: dict[str, Any]) -> None:
        stats = self.evaluator.stats
        if "val_acc" not in info:  # ended by a forbidden action: nothing was evaluated
            self.run.add_invalid()
            self.record_scalar("nas/invalid_episodes", self.run.invalid_episodes)
        else:
            rec, new_best = self.run.add(reward, info, stats.evaluations, stats.cache_hits)
            if self.tensorboard is not None:
                self.tensorboard.evaluated(rec, self.run.best, new_best, stats, rec.episode)
        if self.on_episode is not None:
            self.on_episode(self)

    def state(self) -> dict[str, Any]:
        """What a resumed search needs besides the CSV rows (JSON-ready)."""
        return {**self.run.state(), **(self.tensorboard.state() if self.tensorboard is not None else {})}

    def flush(self) -> None:
        """Put everything recorded so far on disk: called before a checkpoint."""
        self.run.flush()
        if self.tensorboard is not None:
            self.tensorboard.flush(self.run.records, self.run.episodes)

    def top(self, k: int = 5) -> list[Record]:
        """The ``k`` best distinct architectures that trained, best first (ties: earliest)."""
        return top(self.run.records, k)

    def failures(self) -> list[Record]:
        return failures(self.run.records)

    def close(self) -> None:
        """Write what is buffered (the CSV first: it is what resume and the leaderboard read), then
        the final figures; safe to call twice."""
        self.run.close()
        if self.tensorboard is not None:
            tensorboard, self.tensorboard = self.tensorboard, None
            tensorboard.close(self.run.records, self.run.best, self.run.episodes)


class RecordEpisodes(gym.Wrapper):
    """Reports every finished episode of the wrapped env to a :class:`SearchLog`."""

    def __init__(self, env: gym.Env, log: SearchLog) -> None:
        super().__init__(env)
        self.log = log
        if log.evaluator is None:
            log.evaluator = env.get_wrapper_attr("evaluator")  # the env's public evaluator, under any wrapper

    def record_scalar(self, tag: str, value: float, step: int | None = None) -> None:
        self.log.record_scalar(tag, value, step)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            self.log.episode_end(float(reward), info)
        return obs, reward, terminated, truncated, info
