"""The Agent protocol, the registry of built-in agents, and how a user's agent is found.

An agent drives the env (``gym.make("NasGym/...")``) for a number of episodes. Every agent acts
through the env, even the ones that think in whole architectures (random search, evolution):
they play an architecture's actions with :func:`play`. So every agent is charged the same
way, by the evaluator behind the env, and recorded by the same wrapper.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from nas_gym.errors import NasGymError
from nas_gym.spaces.base import Architecture

BUILTIN_AGENTS: dict[str, str] = {
    "random": "agents.random_search:RandomSearch",
    "qlearning": "agents.q_learning:QLearning",
    "evolution": "agents.evolution:RegularizedEvolution",
    "local": "agents.local_search:LocalSearch",
    "ppo": "agents.sb3:PPOAgent",
    "a2c": "agents.sb3:A2CAgent",
    "dqn": "agents.sb3:DQNAgent",
    "maskable_ppo": "agents.sb3:MaskablePPOAgent",
    "reinforce": "agents.reinforce:Reinforce",
    "greedy": "agents.greedy:Greedy",
    "enas": "agents.enas:Enas",
    "darts": "agents.darts:Darts",
    "sh": "agents.successive_halving:SuccessiveHalvingAgent",
    "asha": "agents.asha:Asha",
    "hyperband": "agents.hyperband:OptunaHyperband",
    "bohb": "agents.hyperband:OptunaBohb",
}
ENTRY_POINT_GROUP = "nas_gym.agents"


class AgentError(NasGymError, ValueError):
    """An agent name that cannot be resolved, or hyperparameters it does not take."""


@runtime_checkable
class Agent(Protocol):
    """What ``nas-gym search`` needs of an agent.

    Constructed as ``Agent(env, seed=seed, hparams={...}, logdir=path_or_None)``;
    ``learn(episodes)`` runs exactly ``episodes`` episodes on ``env``. An agent may write its
    own TensorBoard data under ``logdir``, and may log scalars through
    ``env.record_scalar(tag, value)`` when the env has it (the search recorder does).
    ``save`` / ``load`` are optional (resumable searches: ``nas-gym search`` calls ``learn`` in
    chunks of ``--checkpoint-every`` episodes and saves between them, so ``learn(a)`` then
    ``learn(b)`` should do what ``learn(a + b)`` does). Also optional: a ``total_episodes``
    attribute, set to the search's budget before the first ``learn``, for schedules scaled to
    it; and ``checkpoints_in_learn = True`` for an agent whose ``learn(episodes, checkpoint=fn,
    checkpoint_every=n)`` calls ``fn(done)`` itself instead of being chunked (see ``agents.sb3``).
    An agent without ``save`` / ``load`` is resumed from its first episode, its evaluations
    coming back from the cache.
    """

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None: ...

    def learn(self, episodes: int) -> None: ...


def make_hparams(cls: type, values: dict[str, Any] | None):
    """Build an agent's hyperparameter dataclass, naming an unknown key and the known ones."""
    assert is_dataclass(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(values or {}) - known
    if unknown:
        raise AgentError(f"unknown hyperparameter(s) {', '.join(sorted(unknown))} for {cls.__name__}; "
                         f"known: {', '.join(sorted(known))}")
    return cls(**(values or {}))


def play(env: gym.Env, arch: Architecture) -> tuple[float, dict[str, Any]]:
    """Play the actions that build ``arch`` (the space's ``actions_of``) in a freshly reset
    ``env``; return the final reward and info."""
    env.reset()
    for action in env.unwrapped.space.actions_of(arch):
        _, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return float(reward), info
    raise RuntimeError(f"episode for {arch} did not end")  # unreachable for a valid arch


def wrapper_attr(env: gym.Env, name: str) -> Any:
    """An attribute of the outermost wrapper that has it, or None: gymnasium 1.x wrappers do
    not forward plain attribute access, so ``env.action_masks`` would miss the env's own."""
    getter = getattr(env, "get_wrapper_attr", None)
    try:
        return getter(name) if getter is not None else getattr(env, name)
    except AttributeError:
        return None


def mask_source(env: gym.Env) -> Callable[[], np.ndarray]:
    """``action_masks`` of the outermost wrapper defining it (so a wrapper may restrict the
    actions further); an env without masks allows every action."""
    masks = wrapper_attr(env, "action_masks")
    if masks is not None:
        return lambda: np.asarray(masks(), dtype=bool)
    n = int(env.action_space.n)
    return lambda: np.ones(n, dtype=bool)


def _load_attr(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise AgentError(f"cannot load agent {spec!r}: {e}; expected module.path:ClassName") from None
    return obj


def agent_names() -> list[str]:
    return sorted(set(BUILTIN_AGENTS) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def resolve_agent(name: str) -> type:
    """An agent class from a built-in name, an installed package's ``nas_gym.agents`` entry
    point, or a ``module.path:ClassName`` (a ``.py`` file path works too: ``path/to/file.py:Cls``)."""
    if name in BUILTIN_AGENTS:
        return _load_attr(BUILTIN_AGENTS[name])
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()
    if ":" in name:
        path, _, attr = name.partition(":")
        if path.endswith(".py"):
            return _load_file_attr(Path(path), attr)
        return _load_attr(name)
    raise AgentError(f"unknown agent {name!r}; choose one of {', '.join(agent_names())} or give module.path:ClassName")


def _load_file_attr(path: Path, attr: str) -> Any:
    import importlib.util

    if not path.is_file():
        raise AgentError(f"agent file {path} does not exist; give module.path:ClassName or an existing file.py:ClassName")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    if not hasattr(module, attr):
        raise AgentError(f"agent file {path} has no {attr!r}")
    return getattr(module, attr)
