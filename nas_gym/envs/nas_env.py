"""The one env over any search space: ``NasGym/LayerChain-v0``, ``NasGym/Cell-v0`` and users' spaces.

The space (chosen by the preset's ``space.kind``) decides what an action does, which actions are
allowed, when the architecture is complete and how it is observed; the env only keeps the
partial architecture, asks the evaluator when it is complete and turns the result into a reward.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from nas_gym.config import Config, ConfigError, load_config
from nas_gym.errors import NasGymError
from nas_gym.evaluators.base import Evaluator, fidelity_problem
from nas_gym.preflight import preflight
from nas_gym.rewards import cost_terms, reward


class FidelityError(NasGymError, ValueError):
    """An episode asked for a number of epochs its evaluator cannot answer at: one line naming the
    evaluator or table and what it lacks."""


class NasEnv(gym.Env):
    """
    ## Description
    Builds an architecture of the preset's search space one decision per step; when the space
    says it is complete, the evaluator scores it (real training, a lookup table, a zero-cost
    proxy, a surrogate, a supernet or a synthetic score) and the reward function turns the
    score into a reward. ``NasGym/LayerChain-v0`` and ``NasGym/Cell-v0`` are this env with the
    layer-chain and the cell presets; any preset (a user's space included) works with either id.

    ## Action Space
    ``Discrete(space.n_actions)``; what action ``i`` means is the space's (layer chain: append
    ``ops[i]``, the last action is ``stop``; cell: the op of the next edge).

    ## Observation Space
    ``Box(0, 1, (space.observation_size,), float32)``, the space's encoding of the partial
    architecture (layer chain: one one-hot row per position, then depth / max_depth and spatial
    size / input size; cell: one one-hot row per edge, then the share of edges chosen). Equal
    partial architectures give equal observations.

    ## Rewards
    0.0 on every step but the last. On the last, the preset's reward (default: validation
    accuracy in [0, 1]; ``mnas`` and ``constraint`` penalise cost) of the evaluator's result. An
    architecture that fails to train (NaN loss, out of memory, too many parameters) gets the
    failure reward (default: chance level, 1 / num_classes).

    ## Starting State
    The space's empty architecture (no layer; no edge chosen).

    ## Episode End
    Terminates when the space says the architecture is complete (layer chain: ``stop`` or
    ``max_depth`` layers; cell: all 6 edges chosen), or on an action that ``action_masks()``
    forbids: the episode then ends at once, nothing is evaluated, the reward is the preset's
    ``invalid_action_reward`` (default 0.0) and ``info`` carries ``invalid_action=True``.
    Truncation is left to ``TimeLimit``.

    ## Info
    Every step: ``arch`` (text of the architecture so far). Last step: also ``val_acc``,
    ``params``, ``flops``, ``status``, ``reason``, the reward's cost terms, and ``epochs`` when
    the episode chose its fidelity (see Multi-fidelity). Wall-clock times and
    cache hits are not in ``info`` (they would break determinism); they are in the env's public
    ``evaluator.stats`` (through wrappers: ``env.get_wrapper_attr("evaluator").stats``).

    ## Attributes
    ``space``, ``evaluator`` and ``config`` are public and stable: agents read them through
    ``nas_gym.agents.context.AgentContext.of(env)``, never through ``env.unwrapped``.

    ## Arguments
    ``gym.make("NasGym/LayerChain-v0", config="mnist1d", evaluator=None, seed=None,
    overrides=None, render_mode=None, close_evaluator=None)``: ``config`` is a preset name, a YAML
    path or a ``Config``; ``evaluator`` an ``Evaluator`` instance or a kind (``train``, ``table``,
    ``surrogate``, ``supernet``, ``synthetic``, ``proxy:<name>``), by default the preset's;
    ``seed`` seeds the first reset; ``overrides`` maps dotted keys to values
    (``{"train.epochs": 2}``); ``close_evaluator``: whether ``close()`` also closes the evaluator
    (stopping its worker processes or Ray). The rule, the same for the vector env: whoever makes
    an evaluator closes it, so by default the env closes only one it made from a kind.

    ## Seeding
    The first ``reset`` that carries a seed (its own, or the constructor's ``seed``), before
    anything is evaluated, is also the run seed of an evaluator the env made: which training
    seed a table hands out per architecture and the surrogate's sampled noise. So seeding the
    Gymnasium way (``reset(seed=s)``, as SB3 and rl_zoo3 do) gives each seed its own training
    runs, and the same seed the same ones. An evaluator passed in keeps the run seed it was
    made with (whoever makes an evaluator seeds it, as they close it).

    ## Multi-fidelity
    ``reset(options={"epochs": E})`` makes that episode's evaluation answer after ``E`` epochs
    (the evaluator's ``evaluate_at``: a table with learning curves), charged only for epochs of
    the architecture not paid for before, as if its training continued; the next plain
    ``reset()`` goes back to the evaluator's default. An evaluator that cannot answer at a
    chosen epoch (not a ``FidelityEvaluator``, or a table without curves) is refused at the
    reset with a :class:`FidelityError`. ``fidelity_epochs()`` says the most epochs allowed. The
    evaluator under any wrapper answers (``evaluator.unwrapped``), so batching is skipped for
    such an episode; charging is the same, since wrappers charge the inner evaluator.

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
        preflight(self.config)  # files the config names (a latency table), before an evaluator is made
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} is not supported; use 'ansi' or None")
        made_here = evaluator is None or isinstance(evaluator, str)
        self._owns_evaluator = made_here if close_evaluator is None else close_evaluator
        if made_here:
            from nas_gym.evaluators import make_evaluator

            evaluator = make_evaluator(self.config, kind=evaluator, run_seed=seed or 0)
        self.evaluator = evaluator
        self.space = evaluator.space
        expected = self.config.search_space()
        if self.space != expected:
            raise ConfigError(f"evaluator's space ({type(self.space).__name__}) differs from config "
                              f"{self.config.name!r}'s space ({type(expected).__name__}); make the evaluator "
                              "from the same config")
        self.num_classes = evaluator.num_classes
        self.render_mode = render_mode
        self._first_seed = seed
        self.action_space = spaces.Discrete(self.space.n_actions)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.space.observation_size,), dtype=np.float32)
        self.arch = self.space.empty()
        self._done = False
        self._epochs: int | None = None  # this episode's fidelity (reset option), None: the evaluator's default
        self._fidelity_top: int | None = None
        self._made_evaluator = made_here
        self._run_seeded = False  # the first seeded reset before any evaluation seeds the run

    # -- helpers --------------------------------------------------------------------------
    def observe(self, partial: Any) -> np.ndarray:
        """The observation after building ``partial``: lets an agent plan several episodes ahead
        (and hand them to the evaluator together) without stepping the env."""
        return self.space.observe(partial)

    def _get_obs(self) -> np.ndarray:
        return self.space.observe(self.arch)

    def _get_info(self) -> dict[str, Any]:
        return {"arch": self.arch.text()}

    def action_masks(self) -> np.ndarray:
        """Allowed actions (True = allowed), read by sb3-contrib's MaskablePPO."""
        if self._done:
            return np.ones(self.space.n_actions, dtype=bool)
        return self.space.mask(self.arch)

    def _allowed(self, action: int) -> bool:
        return not self._done and 0 <= action < self.space.n_actions and bool(self.space.mask(self.arch)[action])

    def pending_architecture(self, action: int) -> Any | None:
        """The architecture ``step(action)`` would hand to the evaluator, or None if that step
        evaluates nothing. Lets a vector env batch the evaluations of one step."""
        action = int(action)
        if not self._allowed(action):
            return None
        arch, complete = self.space.step(self.arch, action)
        return arch if complete else None

    def fidelity_epochs(self, who: str = "reset option epochs") -> int:
        """The most epochs ``reset(options={"epochs": E})`` accepts (E runs from 1 to it).

        :param who: what asks, to start the error message (an agent names itself).
        :raises FidelityError: the evaluator cannot answer at a chosen number of epochs.
        """
        problem = fidelity_problem(self.evaluator)  # a wrapper (the search's prefetching) charges the inner one anyway
        if problem is not None:
            raise FidelityError(f"{who}: {problem}")
        return int(self.evaluator.unwrapped.max_epochs)

    # -- gymnasium API --------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and self._first_seed is not None:
            seed, self._first_seed = self._first_seed, None
        super().reset(seed=seed)
        if seed is not None and not self._run_seeded and self._made_evaluator:
            self.evaluator.seed_run(seed)
            self._run_seeded = True
        self._epochs = None if not options or options.get("epochs") is None else self._chosen_epochs(options["epochs"])
        self.arch, self._done = self.space.empty(), False
        return self._get_obs(), self._get_info()

    def _chosen_epochs(self, epochs: Any) -> int:
        if self._fidelity_top is None:  # the evaluator never changes: check it once
            self._fidelity_top = self.fidelity_epochs()
        top = self._fidelity_top
        if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or not 1 <= epochs <= top:
            raise FidelityError(f"reset option epochs={epochs!r}: the evaluator answers after 1..{top} epochs; "
                                "give a whole number in that range")
        return int(epochs)

    def step(self, action):
        action = int(action)
        if self._done:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        if not self._allowed(action):
            self._done = True
            info = self._get_info() | {"invalid_action": True}
            return self._get_obs(), float(self.config.reward.invalid_action_reward), True, False, info
        self.arch, complete = self.space.step(self.arch, action)
        if not complete:
            return self._get_obs(), 0.0, False, False, self._get_info()
        self._done = True
        self._run_seeded = True  # from now on a reseed would change noise already drawn
        if self._epochs is None:
            result = self.evaluator.evaluate(self.arch)
        else:
            result = self.evaluator.unwrapped.evaluate_at(self.arch, self._epochs)  # type: ignore[attr-defined]
        info = self._get_info() | {
            "val_acc": result.val_acc,
            "params": result.params,
            "flops": result.flops,
            "status": result.status,
            "reason": result.reason,
        } | cost_terms(result, self.config.reward)
        if self._epochs is not None:
            info["epochs"] = self._epochs
        r = reward(result, self.config.reward, self.num_classes)
        return self._get_obs(), float(r), True, False, info

    def close(self) -> None:
        """Closes the evaluator only if this env owns it (see ``close_evaluator``)."""
        if self._owns_evaluator:
            self.evaluator.close()
        super().close()

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return self.space.describe(self.arch) + "\n"
