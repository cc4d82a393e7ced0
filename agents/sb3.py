"""Stable-Baselines3 agents (PPO, A2C, DQN) and sb3-contrib's MaskablePPO, counted in episodes.

SB3 budgets in timesteps; a NAS search budgets in evaluated architectures. ``learn(episodes)``
therefore gives SB3 a timestep bound it cannot reach first (episodes x the longest possible
episode) and stops on the episode count with ``StopTrainingOnMaxEpisodes``. That callback
multiplies its limit by ``n_envs`` (it means "per env"); :class:`StopAfterEpisodes` counts the
total instead, so a vector env also stops at the asked number (or a few more, when several envs
finish on the same step: those evaluations have happened and are not undone). The callbacks
live in ``nas_gym.agents.sb3_callbacks``; this module assembles them around SB3's algorithms.

Masks: MaskablePPO asks the vector env for ``env_method("action_masks")``, which SB3 2.9's
``DummyVecEnv`` and ``SubprocVecEnv`` resolve with gymnasium's ``get_wrapper_attr``: it walks
down through ``Monitor`` and any ``gym.Wrapper`` to the NasGym env. A wrapper needs its own
``action_masks`` only when it changes the action space or the meaning of actions.

Hyperparameters come from ``envs_config/agents/<algo>.yaml`` (shipped as
``nas_gym/presets/agents/``), in rl-baselines3-zoo's shape: one entry per preset plus
``default``, each a mapping of constructor keywords, with the reason for each number beside it.
The env's preset picks its entry (else ``default``); an entry stands alone, as in the zoo
(YAML merge keys, ``<<: *default``, share the common part); ``hparams`` override single keys.
The numbers are small on purpose: every episode trains a network, so a search is hundreds of
episodes, not millions of steps; a PPO rollout of 2,048 steps would be the whole search.

Checkpoints (``nas-gym search --resume``): these agents save from a callback inside one
``learn`` call (:class:`CheckpointEvery`), not between chunked calls, because ``learn(10) +
learn(10)`` is not ``learn(20)`` here: SB3 drops the rollout a stop cuts short (PPO, A2C) and
DQN the stopping step's transition, the one with the reward. So checkpoints leave an
uninterrupted run unchanged. A resumed run is not equal to it after the checkpoint: the
rollout in flight and DQN's last transition before the save are not saved, and the env
restarts with a fresh episode (model, replay buffer, counts and random states are saved).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import random
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnv

from nas_gym.agents import sb3_files
from nas_gym.agents.base import AgentError, BaseAgent
from nas_gym.agents.context import AgentContext
from nas_gym.agents.hparams import named_activation, preset_hparams, preset_name
from nas_gym.agents.sb3_callbacks import (
    CheckpointEvery,
    CountEpisodes,
    EpisodeExploration,
    NasLoggerCallback,
    StopAfterEpisodes,
)

# Shared by all four: the only reward is at the end of an episode, so discounting would just
# make deeper networks look worse; the networks are tiny MLPs, which run best on the CPU.
_COMMON: dict[str, Any] = {"gamma": 1.0, "device": "cpu"}
_RESERVED = {"self", "env", "seed", "_init_setup_model", "tensorboard_log"}


class _SB3Agent(BaseAgent):
    """Shared body: the preset's entry of ``agents/<HPARAMS_FILE>.yaml``, then ``hparams`` over
    it, go to the algorithm's constructor.

    :param env: a NasGym env (possibly wrapped) or a VecEnv of them.
    :param seed: seeds the SB3 model (its torch and numpy generators, the env's first reset).
    :param hparams: keyword arguments of the algorithm (``policy`` too), each replacing the
        file's value; unknown ones raise :class:`AgentError`. ``tensorboard_log`` is not one: give ``logdir``.
    :param logdir: SB3's TensorBoard output goes to ``logdir / "sb3"``.
    """

    vectorized = True  # takes a VecEnv: `nas-gym search --workers N` gives it N batched sub-envs

    ALGO: ClassVar[type[BaseAlgorithm]]
    HPARAMS_FILE: ClassVar[str | None] = None  # envs_config/agents/<name>.yaml; None: SB3's defaults
    LOG_INTERVAL: ClassVar[int] = 1  # on-policy: dump every rollout (a few episodes), not every 100
    # Torch CPU threads while learning. The policies are MLPs of 64 units on batches of 32, where
    # a second thread only adds synchronisation: measured here (2 cores, another process busy),
    # PPO and DQN learned 100 episodes 8x and 25x faster on one thread than on two. The trainer
    # sets its own count for each evaluation and restores this one afterwards.
    threads: int = 1
    # The search's whole budget, set by run_search before the first learn (DQN scales its
    # exploration to it, so resuming keeps the schedule of one learn call).
    total_episodes: int | None = None
    checkpoints_in_learn = True  # run_search passes learn a checkpoint hook instead of chunking it
    _learning = False

    def __init__(self, env: gym.Env | VecEnv, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        self.env = env
        self.seed = seed
        self.logdir = Path(logdir) if logdir is not None else None
        self.hparams = self.check_hparams(hparams)
        self.file_hparams, self.hparams_source = {}, ""
        if self.HPARAMS_FILE is not None:
            self.file_hparams, self.hparams_source = preset_hparams(self.HPARAMS_FILE, preset_name(env))
            self.check_hparams(self.file_hparams, where=self.hparams_source)
        kwargs = named_activation({**_COMMON, **self.file_hparams, **self.hparams},
                                   self.hparams_source or self.ALGO.__name__)
        policy = kwargs.pop("policy", "MlpPolicy")
        self._rng_state: tuple | None = None
        with self._own_globals():
            self.model = self.ALGO(policy, env, seed=seed, **kwargs)
        self._set_logger()
        # a search's recorder answers record_scalar and writes nas/* itself (see NasLoggerCallback)
        self.nas_callback = NasLoggerCallback(record_nas=not self.model.get_env().has_attr("record_scalar"))

    @classmethod
    def check_hparams(cls, hparams: dict[str, Any] | None, where: str = "") -> dict[str, Any]:
        known = set(inspect.signature(cls.ALGO.__init__).parameters) - _RESERVED
        unknown = set(hparams or {}) - known
        if unknown:
            raise AgentError(f"unknown hyperparameter(s) {', '.join(sorted(unknown))} for {cls.ALGO.__name__}"
                             f"{f' in {where}' if where else ''}; known: {', '.join(sorted(known))}")
        return dict(hparams or {})

    @contextlib.contextmanager
    def _own_globals(self) -> Iterator[None]:
        """Give SB3 this agent's own global random state and thread count, then put the caller's back.

        SB3 seeds and draws from the global ``random``, numpy and torch generators (DQN's
        epsilon-greedy and replay sampling use ``np.random``). Keeping a private copy makes a
        seeded agent reproducible whatever else runs between ``learn`` calls, and leaves the
        caller's generators as they were (STYLE habit 3).
        """
        outer = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        threads = torch.get_num_threads()
        if self._rng_state is not None:
            random.setstate(self._rng_state[0])
            np.random.set_state(self._rng_state[1])
            torch.set_rng_state(self._rng_state[2])
        model = getattr(self, "model", None)
        if model is None or model.device.type == "cpu":
            torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            self._rng_state = (random.getstate(), np.random.get_state(), torch.get_rng_state())
            random.setstate(outer[0])
            np.random.set_state(outer[1])
            torch.set_rng_state(outer[2])
            torch.set_num_threads(threads)

    def _set_logger(self) -> None:
        if self.logdir is not None:
            self.model.set_logger(configure(str(self.logdir / "sb3"), ["tensorboard"]))

    def _max_episode_steps(self) -> int:
        """The longest possible episode, so that SB3's timestep bound is never what stops it."""
        if isinstance(self.env, VecEnv):
            try:
                space = self.env.get_attr("space", indices=0)[0]
            except AttributeError:
                space = None
        else:
            context = AgentContext.find(self.env)
            space = None if context is None else context.space
        if space is not None:
            return int(space.max_steps)
        spec = getattr(self.env, "spec", None)
        return int(getattr(spec, "max_episode_steps", None) or 10_000)

    def _extra_callbacks(self, episodes: int) -> list[BaseCallback]:
        return []

    @property
    def episodes_done(self) -> int:
        """Episodes over all ``learn`` calls; stored on the model so that save / load keep it."""
        return int(getattr(self.model, "nas_episodes_done", 0))

    def learn(self, episodes: int, checkpoint: Callable[[int], None] | None = None, checkpoint_every: int = 0) -> None:
        """Run exactly ``episodes`` episodes (with one env), training as SB3 does.

        :param checkpoint: called as ``checkpoint(n)`` after ``n`` episodes of this call, every
            ``checkpoint_every`` episodes, at a moment ``save`` captures a consistent state.
        """
        if episodes < 1:
            return
        base = self.episodes_done
        stop = StopAfterEpisodes(episodes)
        extra = self._extra_callbacks(episodes)
        if checkpoint is not None and checkpoint_every > 0:
            def at(n: int) -> None:
                self.model.nas_episodes_done = base + n  # type: ignore[attr-defined]
                checkpoint(n)

            extra.append(CheckpointEvery(checkpoint_every, episodes, at))
        callbacks = CallbackList([stop, self.nas_callback, *extra])
        # A stop on the episode count leaves SB3's last observation stale (it returns before
        # storing it, and the env has been reset): drop it so SB3 resets the env itself.
        self.model._last_obs = None  # type: ignore[assignment]
        self._learning = True
        try:
            with self._own_globals():
                self.model.learn(total_timesteps=episodes * self._max_episode_steps(), callback=callbacks,
                                 log_interval=self.LOG_INTERVAL, reset_num_timesteps=False)
        finally:
            self._learning = False
        self.model.nas_episodes_done = base + stop.n_episodes  # type: ignore[attr-defined]

    @staticmethod
    def rng_path(path: str | Path) -> Path:
        return Path(f"{path}.rng.json")

    def save(self, path: str | Path) -> None:
        """The model, and beside it (``<path>.rng.json``) what it does not hold as data: the private
        global random states SB3 draws from (DQN's epsilon-greedy, replay sampling), the action
        space's (DQN's random actions), which SB3's ``load`` would otherwise re-seed, and the
        episode statistics SB3 would otherwise pickle."""
        self.model.save(path)
        # inside learn (a checkpoint hook) the agent's states are the live globals
        globals_ = (random.getstate(), np.random.get_state(), torch.get_rng_state()) if self._learning else self._rng_state
        saved = {"globals": None if globals_ is None else sb3_files.rng_to_json(globals_),
                 "action_space": self.model.action_space.np_random.bit_generator.state,
                 "ep_info_buffer": list(self.model.ep_info_buffer or []),
                 "ep_success_buffer": list(self.model.ep_success_buffer or [])}
        self.rng_path(path).write_text(json.dumps(saved))

    def load(self, path: str | Path) -> None:
        """Replace the model by the saved one, on the same env; the logger is set up again.

        No code in the archive runs: every entry SB3 would unpickle (``:serialized:``) is
        replaced by this agent's own value through ``custom_objects`` (the policy class, spaces
        and schedules follow from the same hyperparameters, which resume checks); the weights
        are read by ``torch.load(weights_only=True)`` inside SB3.
        """
        zip_path = Path(path) if Path(path).is_file() else Path(f"{path}.zip")  # SB3 adds .zip when it is missing
        custom = sb3_files.custom_objects(zip_path, self.model)
        with self._own_globals():
            self.model = self.ALGO.load(path, env=self.model.get_env(), device=self.model.device, custom_objects=custom)
        if self.rng_path(path).exists():  # after the context, which stores the globals on exit
            saved = json.loads(self.rng_path(path).read_text())
            if saved.get("globals") is not None:
                self._rng_state = sb3_files.rng_from_json(saved["globals"])
            self.model.action_space.np_random.bit_generator.state = saved["action_space"]
            window = self.model._stats_window_size
            self.model.ep_info_buffer = deque(sb3_files.episode_infos(saved.get("ep_info_buffer", [])), maxlen=window)
            self.model.ep_success_buffer = deque(saved.get("ep_success_buffer", []), maxlen=window)
        self._set_logger()


class PPOAgent(_SB3Agent):
    """PPO with rollouts of a handful of episodes and one minibatch (``agents/ppo.yaml``)."""

    ALGO = PPO
    HPARAMS_FILE = "ppo"


class MaskablePPOAgent(_SB3Agent):
    """MaskablePPO (sb3-contrib): PPO that only samples the actions ``action_masks()`` allows,
    so no episode is wasted on a forbidden layer."""

    ALGO = MaskablePPO
    HPARAMS_FILE = "maskable_ppo"


class A2CAgent(_SB3Agent):
    """A2C updating about every two episodes (``agents/a2c.yaml``)."""

    ALGO = A2C
    HPARAMS_FILE = "a2c"


class DQNAgent(_SB3Agent):
    """DQN with a small buffer, learning after a few episodes, and epsilon decaying over a fraction
    of the episode budget (``agents/dqn.yaml``; see :class:`EpisodeExploration`)."""

    ALGO = DQN
    LOG_INTERVAL = 4  # off-policy: counted in episodes (SB3's default)
    HPARAMS_FILE = "dqn"

    def _extra_callbacks(self, episodes: int) -> list[BaseCallback]:
        # Installed on every learn: SB3's load rebuilds its own LinearSchedule.
        m = self.model
        schedule = EpisodeExploration(m.exploration_initial_eps, m.exploration_final_eps, m.exploration_fraction)
        schedule.done, schedule.total = self.episodes_done, self.total_episodes or self.episodes_done + episodes
        m.exploration_schedule = schedule
        return [CountEpisodes(schedule)]

    @staticmethod
    def replay_path(path: str | Path) -> Path:
        return Path(f"{path}.replay.npz")

    def save(self, path: str | Path) -> None:
        """The model, and the replay buffer beside it as plain arrays (``<path>.replay.npz``;
        SB3's own ``save_replay_buffer`` pickles it)."""
        super().save(path)
        sb3_files.save_replay(self.replay_path(path), self.model.replay_buffer)

    def load(self, path: str | Path) -> None:
        super().load(path)
        if self.replay_path(path).exists():
            sb3_files.load_replay(self.replay_path(path), self.model.replay_buffer)

