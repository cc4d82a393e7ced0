"""What an agent may use besides the env's own steps: one declared context.

An agent acts through ``env.step`` and is charged by the evaluator behind the env. Some agents
need a little more: the search space (to sample, mutate or plan architectures without stepping),
how many architectures to propose at a time and a way to hand them over together (parallel
workers), a place to log their own curves, a way to charge compute they spend themselves
(one-shot agents train a supernet), and the preset (its name picks hyperparameters). They get
exactly that here, read once from the env's public attributes through gymnasium's
``get_wrapper_attr``, instead of reaching through ``env.unwrapped`` to whatever lies beneath:
a wrapper that defines one of these attributes (a narrower space, its own recorder) is then
what the agent sees, and the evaluator's internals stay out of reach.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from nas_gym.agents.errors import AgentError

if TYPE_CHECKING:
    from nas_gym.config import Config
    from nas_gym.spaces.base import Architecture, SearchSpace

ScalarRecorder = Callable[..., None]  # record_scalar(tag, value, step=None)


@dataclass(frozen=True)
class AgentContext:
    """Everything an agent may use besides ``env.step``.

    :param space: the env's search space.
    :param config: the env's preset (None for an env without one).
    :param batch_size: architectures to propose at a time, handed over with ``prefetch``, to
        keep the evaluator's parallel workers busy (1: nothing to gain).
    :param prefetch: hand the evaluator architectures the agent will play next, so they are
        computed together; the episodes that play them are then served the results.
    :param charge_seconds: add compute seconds the agent spent itself (a supernet's training)
        to the budget it is compared on.
    :param record_scalar: ``record_scalar(tag, value, step=None)`` of the search's recorder,
        or None when nothing records (the env alone, outside ``nas-gym search``).
    """

    space: SearchSpace
    config: Config | None
    batch_size: int
    prefetch: Callable[[Sequence[Architecture]], None]
    charge_seconds: Callable[[float], None]
    record_scalar: ScalarRecorder | None = None

    @classmethod
    def of(cls, env: gym.Env) -> AgentContext:
        """The context of a NasGym env (wrapped or not), from its public ``space``,
        ``evaluator``, ``config`` and, when a recorder wraps it, ``record_scalar``.

        :raises AgentError: ``env`` is not a NasGym env.
        """
        found = cls.find(env)
        if found is None:
            raise AgentError(f"env {env} has no search space and evaluator; this agent needs a NasGym env "
                             "(gym.make('NasGym/LayerChain-v0') or 'NasGym/Cell-v0', wrapped or not)")
        return found

    @classmethod
    def find(cls, env: gym.Env) -> AgentContext | None:
        """Like :meth:`of`, but None for an env that is not a NasGym env (agents that also run
        on other envs, such as the SB3 ones)."""
        space, evaluator = _attr(env, "space"), _attr(env, "evaluator")
        if space is None or evaluator is None:
            return None

        def charge_seconds(seconds: float) -> None:
            evaluator.stats.charge_seconds(seconds)  # read at each call: a resumed evaluator replaces its stats

        return cls(space=space, config=_attr(env, "config"), batch_size=int(evaluator.batch_size),
                   prefetch=evaluator.prefetch, charge_seconds=charge_seconds,
                   record_scalar=_attr(env, "record_scalar"))


def _attr(env: gym.Env, name: str) -> Any:
    """``name`` of the outermost wrapper (or the env) defining it, or None: gymnasium 1.x
    wrappers do not forward plain attribute access, ``get_wrapper_attr`` walks down to it."""
    try:
        return env.get_wrapper_attr(name)
    except AttributeError:
        return None
