"""The Agent protocol, the base class declaring what an agent may offer, the registry of built-in
agents, and how a user's agent is found.

An agent drives the env (``gym.make("NasGym/...")``) for a number of episodes. Every agent acts
through the env, even the ones that think in whole architectures (random search, evolution):
they play an architecture's actions with :func:`play`. So every agent is charged the same
way, by the evaluator behind the env, and recorded by the same wrapper. What else it may use
comes from its :class:`~nas_gym.agents.context.AgentContext`; what it offers the search (resuming, a
vector env, ask / tell) is declared on :class:`BaseAgent`, and read, never probed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from nas_gym import plugins
from nas_gym.agents.context import AgentContext
from nas_gym.agents.errors import AgentError
from nas_gym.spaces.base import Architecture

__all__ = ["BUILTIN_AGENTS", "Agent", "AgentContext", "AgentError", "BaseAgent", "agent_names", "as_agent",
           "declared", "make_hparams", "mask_source", "play", "resolve_agent", "wrapper_attr"]

BUILTIN_AGENTS: dict[str, str] = {
    "random": "nas_gym.agents.random_search:RandomSearch",
    "qlearning": "nas_gym.agents.q_learning:QLearning",
    "evolution": "nas_gym.agents.evolution:RegularizedEvolution",
    "local": "nas_gym.agents.local_search:LocalSearch",
    "ppo": "nas_gym.agents.sb3:PPOAgent",
    "a2c": "nas_gym.agents.sb3:A2CAgent",
    "dqn": "nas_gym.agents.sb3:DQNAgent",
    "maskable_ppo": "nas_gym.agents.sb3:MaskablePPOAgent",
    "reinforce": "nas_gym.agents.reinforce:Reinforce",
    "greedy": "nas_gym.agents.greedy:Greedy",
    "enas": "nas_gym.agents.enas:Enas",
    "darts": "nas_gym.agents.darts:Darts",
    "tpe": "nas_gym.agents.optuna_agents:TPE",
    "gp": "nas_gym.agents.optuna_agents:GP",
    "nsga2": "nas_gym.agents.optuna_nsga2:NSGA2",
    "smac": "nas_gym.agents.smac_agent:SMAC",
    "sh": "nas_gym.agents.successive_halving:SuccessiveHalvingAgent",
    "asha": "nas_gym.agents.asha:Asha",
    "hyperband": "nas_gym.agents.hyperband:OptunaHyperband",
    "bohb": "nas_gym.agents.hyperband:OptunaBohb",
    "smac_hb": "nas_gym.agents.smac_hyperband:SMACHyperband",
}
ENTRY_POINT_GROUP = plugins.GROUPS["agent"]


@runtime_checkable
class Agent(Protocol):
    """What ``nas-gym search`` needs of an agent, at the least.

    Constructed as ``Agent(env, seed=seed, hparams={...}, logdir=path_or_None)``;
    ``learn(episodes)`` runs exactly ``episodes`` episodes on ``env``. An agent may write its
    own TensorBoard data under ``logdir``. Everything else an agent can offer (resuming, a
    vector env, schedules scaled to the budget, ask / tell) is declared by :class:`BaseAgent`;
    a plain class with only these two members still runs, with every option at its default.
    """

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None: ...

    def learn(self, episodes: int) -> None: ...


class BaseAgent:
    """The declared shape of an agent: ``learn`` plus every optional member, each with its default.

    Subclassing is how an agent says what it supports; ``nas-gym search`` reads these members
    and never probes for others (as SB3's ``BaseAlgorithm`` declares ``save`` / ``load``).

    :cvar vectorized: ``learn`` takes a VecEnv: ``nas-gym search --workers N`` gives it N batched sub-envs.
    :cvar checkpoints_in_learn: ``learn(episodes, checkpoint=fn, checkpoint_every=n)`` calls
        ``fn(done)`` itself instead of being called in chunks of ``n`` episodes with a save between
        them (``nas_gym.agents.sb3``, where chunks would change the run).
    :cvar resumable: ``save`` / ``load`` restore the agent (``nas-gym search --resume``); chunked
        learning must then be exact: ``learn(a)`` then ``learn(b)`` does what ``learn(a + b)`` does.
        By default True exactly when the class overrides both; a non-resumable agent is resumed
        from its first episode, its evaluations coming back from the cache.
    :cvar ask_tell: the agent thinks in whole architectures through ``ask`` / ``tell``
        (the simulated-workers driver, ``nas_gym.runs.workers``, asks while workers are free). By
        default True exactly when the class overrides both; ``learn`` then plays them one by one.
    :cvar synchronous: an ask/tell agent that asks a whole batch and waits for all of it (False:
        it asks again as soon as any result arrives).
    :ivar total_episodes: the search's whole budget, set by the search before the first ``learn``
        (schedules scale to it, not to one chunk); None outside a search.
    :ivar env: the env the agent was made with.
    """

    vectorized: ClassVar[bool] = False
    checkpoints_in_learn: ClassVar[bool] = False
    resumable: ClassVar[bool] = False
    ask_tell: ClassVar[bool] = False
    synchronous: ClassVar[bool] = False
    _derived_flags: ClassVar[frozenset[str]] = frozenset()
    total_episodes: int | None = None
    env: gym.Env

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # a flag a class body sets is kept (and inherited); one this hook derived is derived
        # again for each subclass, which may add the methods its parent lacked
        derived = set()
        for flag, methods in (("resumable", ("save", "load")), ("ask_tell", ("ask", "tell"))):
            declared_by = [k for k in cls.__mro__[:-1] if k is not BaseAgent and flag in k.__dict__
                           and flag not in k.__dict__.get("_derived_flags", ())]
            if not declared_by:
                setattr(cls, flag, all(getattr(cls, m) is not getattr(BaseAgent, m) for m in methods))
                derived.add(flag)
        cls._derived_flags = frozenset(derived)

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        self.env = env

    @cached_property
    def context(self) -> AgentContext:
        """What the agent may use besides ``env.step``: the space, batching, a recorder, a charge."""
        return AgentContext.of(self.env)

    def learn(self, episodes: int) -> None:
        """Run exactly ``episodes`` episodes; an ask/tell agent plays its asks one by one."""
        if not self.ask_tell:
            raise NotImplementedError(f"{type(self).__name__} implements neither learn nor ask / tell")
        for _ in range(episodes):
            arch = self.ask()
            reward, info = play(self.env, arch)
            self.tell(arch, reward, info)

    def ask(self) -> Architecture:
        """The next architecture to evaluate, from the results told so far."""
        raise NotImplementedError(f"{type(self).__name__} does not ask (ask_tell = False)")

    def tell(self, arch: Architecture, reward: float, info: dict[str, Any]) -> None:
        """A result of an architecture ``ask`` returned has arrived."""
        raise NotImplementedError(f"{type(self).__name__} is not told (ask_tell = False)")

    def reset_options(self, arch: Architecture) -> dict[str, Any] | None:
        """The options of the ``env.reset`` starting the episode that evaluates ``arch`` (a
        multi-fidelity agent's ``{"epochs": E}``); None: a plain reset."""
        return None

    def save(self, path: str | Path) -> None:
        """Write the agent's state to ``path`` (a file or folder of its choosing)."""
        raise NotImplementedError(f"{type(self).__name__} is not resumable (resumable = False)")

    def load(self, path: str | Path) -> None:
        """Restore what ``save`` wrote, into an agent made with the same arguments."""
        raise NotImplementedError(f"{type(self).__name__} is not resumable (resumable = False)")


class _Plain(BaseAgent):
    """A user's agent that is a plain class: its ``learn``, every option at its default."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def learn(self, episodes: int) -> None:
        self.agent.learn(episodes)


def declared(cls: Any) -> type[BaseAgent]:
    """The declarations that hold for agent class ``cls``: its own when it subclasses
    :class:`BaseAgent`, else the defaults (a plain class declares nothing)."""
    return cls if isinstance(cls, type) and issubclass(cls, BaseAgent) else BaseAgent


def as_agent(agent: Any) -> BaseAgent:
    """``agent`` itself when it subclasses :class:`BaseAgent`, else a :class:`BaseAgent` driving
    its ``learn`` with every option at its default (not resumable, not vectorized)."""
    return agent if isinstance(agent, BaseAgent) else _Plain(agent)


def make_hparams(cls: type, values: dict[str, Any] | None):
    """Build an agent's hyperparameter dataclass, naming an unknown key and the known ones."""
    assert is_dataclass(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(values or {}) - known
    if unknown:
        raise AgentError(f"unknown hyperparameter(s) {', '.join(sorted(unknown))} for {cls.__name__}; "
                         f"known: {', '.join(sorted(known))}")
    return cls(**(values or {}))


def is_ask_tell(agent: Any) -> bool:
    """Whether an agent (instance or class) declares ask/tell (:class:`BaseAgent`'s ``ask_tell``)."""
    cls = agent if isinstance(agent, type) else type(agent)
    return declared(cls).ask_tell


def play(env: gym.Env, arch: Architecture, options: dict[str, Any] | None = None) -> tuple[float, dict[str, Any]]:
    """Play the actions that build ``arch`` (the space's ``actions_of``) in a freshly reset
    ``env`` (reset with ``options``, e.g. ``{"epochs": E}``); return the final reward and info."""
    env.reset(options=options)
    for action in env.get_wrapper_attr("space").actions_of(arch):
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


def agent_names() -> list[str]:
    """Built-in names and those installed packages declare as ``nas_gym.agents`` entry points."""
    return plugins.names("agent", BUILTIN_AGENTS)


def resolve_agent(name: str) -> type:
    """An agent class from a built-in name, an installed package's ``nas_gym.agents`` entry
    point, or a ``module.path:ClassName`` (a ``.py`` file path works too: ``path/to/file.py:Cls``).

    :raises AgentError: one line naming ``name`` and what is accepted (``nas_gym.plugins``).
    """
    return plugins.load(name, "agent", BUILTIN_AGENTS, AgentError)
