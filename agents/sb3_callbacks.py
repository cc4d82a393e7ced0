"""The SB3 callbacks and schedules behind ``nas_gym.agents.sb3``: stopping on an episode count, saving
from inside ``learn``, NAS scalars in SB3's logger, and DQN's exploration counted in episodes.

Apart from the agent classes because they are what adapts SB3's timestep world to a search
counted in evaluated architectures; the agents only assemble them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, StopTrainingOnMaxEpisodes
from stable_baselines3.common.vec_env import VecEnv


class StopAfterEpisodes(StopTrainingOnMaxEpisodes):
    """``StopTrainingOnMaxEpisodes`` whose limit is the total over all envs, not per env."""

    def _init_callback(self) -> None:
        self._total_max_episodes = self.max_episodes


class CheckpointEvery(BaseCallback):
    """Calls ``checkpoint(n)`` from inside SB3's loop each time the episodes finished in this
    ``learn`` call pass a multiple of ``every``, except at the last one (the caller saves at the
    end). Like SB3's own ``CheckpointCallback``, it changes nothing in the run it saves."""

    def __init__(self, every: int, episodes: int, checkpoint: Callable[[int], None]) -> None:
        super().__init__()
        self.every, self.episodes, self.checkpoint = every, episodes, checkpoint
        self.done = 0

    def _on_step(self) -> bool:
        finished = int(np.sum(self.locals["dones"]))
        if finished:
            before, self.done = self.done, self.done + finished
            if self.done < self.episodes and self.done // self.every > before // self.every:
                self.checkpoint(self.done)
        return True


class NasLoggerCallback(BaseCallback):
    """Adds NAS scalars to SB3's logger, next to its own ``rollout/`` and ``train/`` keys, for an
    env that no search recorder wraps; and dumps the logger when training stops.

    ``nas/val_acc`` is the mean over the episodes that finished since the last dump (SB3 dumps
    per rollout, or every few episodes off-policy); ``nas/best_val_acc`` and the evaluator's
    counts are running totals. It lives as long as the agent, so the best survives several
    ``learn`` calls.

    :param record_nas: False inside ``nas-gym search``: its recorder writes every ``nas/*`` tag
        to the run folder's own stream with one point per episode (x = episodes), and the same
        tags here, in ``sb3/`` on SB3's timestep axis, would draw two curves of one name against
        different x axes. SB3's own keys stay here, on timesteps.
    """

    def __init__(self, verbose: int = 0, record_nas: bool = True) -> None:
        super().__init__(verbose)
        self.record_nas = record_nas
        self.best_val_acc: float | None = None
        self.invalid_episodes = 0

    def _on_step(self) -> bool:
        if not self.record_nas:
            return True
        ended = False
        for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
            if not done:
                continue
            ended = True
            if "val_acc" not in info:  # ended by a forbidden action: nothing was evaluated
                self.invalid_episodes += 1
                continue
            val_acc = float(info["val_acc"])
            self.logger.record_mean("nas/val_acc", val_acc)
            self.logger.record("nas/params", int(info["params"]))
            if self.best_val_acc is None or val_acc > self.best_val_acc:
                self.best_val_acc = val_acc
        if ended:
            self._record_totals()
        return True

    def _record_totals(self) -> None:
        if self.best_val_acc is not None:
            self.logger.record("nas/best_val_acc", self.best_val_acc)
        self.logger.record("nas/invalid_episodes", self.invalid_episodes)
        stats = evaluator_stats(self.training_env)
        if stats is not None:
            evaluations, hits = stats
            self.logger.record("nas/evaluations", evaluations)
            self.logger.record("nas/cache_hit_rate", hits / evaluations if evaluations else 0.0)

    def _on_training_end(self) -> None:
        # Training stops mid-rollout on the episode count, before SB3's own dump: flush the rest.
        self.logger.dump(self.num_timesteps)


def evaluator_stats(venv: VecEnv) -> tuple[int, int] | None:
    """(evaluations, cache hits) summed over the distinct evaluators behind ``venv``'s envs.

    ``get_attr`` hands back the evaluator objects themselves in a ``DummyVecEnv`` (cheap); a
    ``SubprocVecEnv`` would have to pickle them, so an evaluator that cannot be pickled gives None.
    """
    try:
        evaluators = venv.get_attr("evaluator")
    except Exception:  # no evaluator, or one that cannot cross a process boundary
        return None
    unique = {id(e): e for e in evaluators}.values()
    return (sum(e.stats.evaluations for e in unique), sum(e.stats.cache_hits for e in unique))


class EpisodeExploration:
    """DQN's linear epsilon decay measured in episodes of the budget, not in timesteps.

    SB3 decays over ``exploration_fraction`` of ``total_timesteps``, but the timestep bound that
    ``learn`` passes is never reached (episodes end early on ``stop``), so the decay would be
    stretched unpredictably. Called with SB3's progress, which it ignores.
    """

    def __init__(self, start: float, end: float, fraction: float) -> None:
        self.start, self.end, self.fraction = start, end, fraction
        self.done, self.total = 0, 1

    def __call__(self, _progress_remaining: float) -> float:
        span = self.fraction * self.total
        f = 1.0 if span <= 0 else min(1.0, self.done / span)
        return self.start + f * (self.end - self.start)


class CountEpisodes(BaseCallback):
    """Counts finished episodes into an :class:`EpisodeExploration` schedule."""

    def __init__(self, schedule: EpisodeExploration) -> None:
        super().__init__()
        self.schedule = schedule

    def _on_step(self) -> bool:
        # Runs before DQN's own _on_step, which reads the schedule right after.
        self.schedule.done += int(np.sum(self.locals["dones"]))
        return True
