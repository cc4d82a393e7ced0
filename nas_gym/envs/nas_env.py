"""``NasGym/LayerChain-v0``: build a network one layer at a time; its trained accuracy is the reward."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from nas_gym.config import Config, load_config
from nas_gym.evaluators.base import EvalResult, Evaluator
from nas_gym.rewards import cost_terms, reward
from nas_gym.space import EMPTY, Architecture


class LayerChainEnv(gym.Env):
    """
    ## Description
    A MetaQNN-style architecture search: each step appends one layer (convolution, residual
    block, pooling, dropout) to a chain that a fixed head (global average pooling + linear)
    closes. When the chain stops, the evaluator scores it (real training, a lookup table, a
    zero-cost proxy or a synthetic score) and the reward function turns the score into a reward.

    ## Action Space
    ``Discrete(len(ops) + 1)``: action ``i < len(ops)`` appends ``ops[i]`` of the preset's
    vocabulary (see ``env.unwrapped.space.ops``); the last action is ``stop``.

    ## Observation Space
    A flat ``Box(0, 1, (max_depth * len(ops) + 2,), float32)``: one one-hot row per position of
    the chain (all zeros past its end), then the depth divided by ``max_depth`` and the current
    spatial size divided by the input's. Equal prefixes give equal observations.

    ## Rewards
    0.0 on every step but the last. On the last, the preset's reward (default: validation
    accuracy in [0, 1]; ``mnas`` and ``constraint`` penalise cost) of the evaluator's result. An
    architecture that fails to train (NaN loss, out of memory, too many parameters) gets the
    failure reward (default: chance level, 1 / num_classes).

    ## Starting State
    The empty chain.

    ## Episode End
    Terminates on ``stop``, on reaching ``max_depth`` (the chain is then evaluated), or on an
    action that ``action_masks()`` forbids: the episode then ends at once, nothing is evaluated,
    the reward is the preset's ``invalid_action_reward`` (default 0.0) and ``info`` carries
    ``invalid_action=True``. Truncation is left to ``TimeLimit``.

    ## Info
    Every step: ``arch`` (text of the chain so far). Last step: also ``val_acc``, ``params``,
    ``flops``, ``status``, ``reason`` and the reward's cost terms. Wall-clock times and cache
    hits are not in ``info`` (they would break determinism); they are in
    ``env.unwrapped.evaluator.stats``.

    ## Arguments
    ``gym.make("NasGym/LayerChain-v0", config="mnist1d", evaluator=None, seed=None,
    overrides=None, render_mode=None, close_evaluator=None)``: ``config`` is a preset name, a YAML
    path or a ``Config``; ``evaluator`` an ``Evaluator`` instance or a kind (``train``, ``table``,
    ``synthetic``, ``proxy:<name>``), by default the preset's; ``seed`` seeds the first reset;
    ``overrides`` maps dotted keys to values (``{"train.epochs": 2}``); ``close_evaluator``:
    whether ``close()`` also closes the evaluator (stopping its worker processes or Ray), by
    default only when the env made it.

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        config: str | Path | Config = "mnist1d",
        evaluator: Evaluator | str | None = None,
        seed: int | None = None,
        overrides: dict[str, Any] | None = None,
        render_mode: str | None = None,
        close_evaluator: bool | None = None,
    ) -> None:
        self.config = load_config(config, overrides)
        made_here = evaluator is None or isinstance(evaluator, str)
        self._owns_evaluator = made_here if close_evaluator is None else close_evaluator
        if made_here:
            from nas_gym.evaluators import make_evaluator

            evaluator = make_evaluator(self.config, kind=evaluator)
        self.evaluator = evaluator
        self.space = evaluator.space
        self.num_classes = evaluator.num_classes
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} is not supported; use 'ansi' or None")
        self.render_mode = render_mode
        self._first_seed = seed
        n_ops, depth = len(self.space.ops), self.space.max_depth
        self.action_space = spaces.Discrete(self.space.n_actions)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(depth * n_ops + 2,), dtype=np.float32)
        self.arch: Architecture = EMPTY
        self._done = False
        self.last_result: EvalResult | None = None

    # -- helpers --------------------------------------------------------------------------
    def observe(self, prefix: Architecture) -> np.ndarray:
        """The observation the env gives after building ``prefix``: lets an agent plan several
        episodes ahead (and hand them to the evaluator together) without stepping the env."""
        n_ops = len(self.space.ops)
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        for i, op in enumerate(prefix.ops):
            obs[i * n_ops + self.space.action_of(op)] = 1.0
        obs[-2] = len(prefix) / self.space.max_depth
        obs[-1] = self.space.spatial_size(prefix) / self.space.input_size
        return obs

    def _get_obs(self) -> np.ndarray:
        return self.observe(self.arch)

    def _get_info(self) -> dict[str, Any]:
        return {"arch": self.arch.text()}

    def action_masks(self) -> np.ndarray:
        """Allowed actions (True = allowed), read by sb3-contrib's MaskablePPO."""
        if self._done:
            return np.ones(self.space.n_actions, dtype=bool)
        return self.space.mask(self.arch)

    def pending_architecture(self, action: int) -> Architecture | None:
        """The architecture ``step(action)`` would hand to the evaluator, or None if that step
        evaluates nothing. Lets a vector env batch the evaluations of one step."""
        action = int(action)
        if self._done or not 0 <= action < self.space.n_actions or not self.space.mask(self.arch)[action]:
            return None
        if action == self.space.stop_action:
            return self.arch
        if len(self.arch) + 1 == self.space.max_depth:
            return self.arch.append(self.space.ops[action])
        return None

    # -- gymnasium API --------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and self._first_seed is not None:
            seed, self._first_seed = self._first_seed, None
        super().reset(seed=seed)
        self.arch, self._done, self.last_result = EMPTY, False, None
        return self._get_obs(), self._get_info()

    def step(self, action):
        action = int(action)
        if self._done:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        if not 0 <= action < self.space.n_actions or not self.space.mask(self.arch)[action]:
            self._done = True
            info = self._get_info() | {"invalid_action": True}
            return self._get_obs(), float(self.config.reward.invalid_action_reward), True, False, info
        if action != self.space.stop_action:
            self.arch = self.arch.append(self.space.ops[action])
            if len(self.arch) < self.space.max_depth:
                return self._get_obs(), 0.0, False, False, self._get_info()
        self._done = True
        result = self.evaluator.evaluate(self.arch)
        self.last_result = result
        info = self._get_info() | {
            "val_acc": result.val_acc,
            "params": result.params,
            "flops": result.flops,
            "status": result.status,
            "reason": result.reason,
        } | cost_terms(result, self.config.reward)
        r = reward(result, self.config.reward, self.num_classes)
        return self._get_obs(), float(r), True, False, info

    def close(self) -> None:
        """Stops the evaluator's workers (process pool, Ray) if this env owns the evaluator (see
        ``close_evaluator``): one passed in belongs to the caller, who may share it between envs."""
        close = getattr(self.evaluator, "close", None)
        if self._owns_evaluator and close is not None:
            close()
        super().close()

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        depth, size = len(self.arch), self.space.spatial_size(self.arch)
        return f"{self.arch.text() or '<empty>'}  (depth {depth}/{self.space.max_depth}, spatial size {size})\n"
