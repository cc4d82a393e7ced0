"""A batched SB3 vector env over the NAS env: construction steps run in-process, evaluations run together.

Building an architecture is a few microseconds per step; training it is seconds. So the
sub-envs step in the driver like SB3's ``DummyVecEnv`` (whose auto-reset, ``terminal_observation``
and ``env_method`` conventions this inherits), and the architectures that finish in one step
are handed to the evaluator in one ``evaluate_many`` call, where a process or Ray backend
trains them concurrently and identical ones (in flight for two sub-envs) are trained once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from nas_gym.config import Config, load_config
from nas_gym.envs.nas_env import NasEnv
from nas_gym.evaluators.base import Evaluator
from nas_gym.evaluators.prefetch import PrefetchEvaluator
from nas_gym.preflight import preflight


class NasVecEnv(DummyVecEnv):
    """``n_envs`` envs (any space) sharing one evaluator, usable wherever SB3 takes a ``VecEnv``.

    :param n_envs: number of sub-envs (the most architectures evaluated together).
    :param config: preset name, YAML path or Config.
    :param evaluator: an Evaluator or kind; default the config's (its backend decides how the
        batch is trained: serial, process pool or Ray).
    :param seed: seeds sub-env ``i`` with ``seed + i``.
    :param wrap: applied to each sub-env (after ``Monitor``), e.g. to record episodes.
    :param close_evaluator: whether ``close()`` closes the evaluator; by default only one made
        here from a kind (the env's rule: whoever makes an evaluator closes it).
    """

    def __init__(self, n_envs: int, config: str | Path | Config = "mnist1d", evaluator: Evaluator | str | None = None,
                 seed: int | None = None, overrides: dict[str, Any] | None = None,
                 wrap: Callable[[gym.Env], gym.Env] | None = None, close_evaluator: bool | None = None) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        cfg = load_config(config, overrides)
        preflight(cfg)  # before the evaluator (and its workers) starts
        made_here = evaluator is None or isinstance(evaluator, str)
        self._owns_evaluator = made_here if close_evaluator is None else close_evaluator
        if made_here:
            from nas_gym.evaluators import make_evaluator

            evaluator = make_evaluator(cfg, kind=evaluator, run_seed=seed or 0)
        self.evaluator = PrefetchEvaluator(evaluator)
        self._owns_made = made_here

        self._nas_envs: list[NasEnv] = []  # the sub-envs themselves, under their wrappers

        def make_env() -> gym.Env:
            self._nas_envs.append(nas_env := NasEnv(cfg, evaluator=self.evaluator))
            env: gym.Env = Monitor(nas_env)
            return wrap(env) if wrap is not None else env

        super().__init__([make_env for _ in range(n_envs)])
        if seed is not None:
            self.seed(seed)

    def seed(self, seed: int | None = None):
        """Seeds the sub-envs (``seed + i``, as SB3 does) and, for an evaluator made here, its
        run seed (``seed``), like a single env's first seeded reset (see ``NasEnv``)."""
        if seed is not None and self._owns_made and self.evaluator.stats.evaluations == 0:
            self.evaluator.seed_run(seed)
        return super().seed(seed)

    def step_wait(self):
        pending = [env.pending_architecture(action) for env, action in zip(self._nas_envs, self.actions, strict=True)]
        batch = [arch for arch in pending if arch is not None]
        if batch:
            self.evaluator.prefetch(batch)
        return super().step_wait()

    def action_masks(self) -> np.ndarray:
        """Masks of all sub-envs, shape (n_envs, n_actions), for MaskablePPO."""
        return np.stack([env.action_masks() for env in self._nas_envs])

    def close(self) -> None:
        super().close()  # the sub-envs share the evaluator but do not own it
        if self._owns_evaluator:
            self.evaluator.close()
