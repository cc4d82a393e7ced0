"""The ask/tell protocol: agents that think in whole architectures, driven one result at a time.

An agent that implements it can run on K simulated workers (``nas_gym.runs.workers``): the
driver asks for an architecture whenever a worker frees and tells each result only once it
would have arrived, so the agent never plans with a result it could not have had yet. With one
worker, ``learn(n)`` is exactly ``n`` times ``arch = ask(); reward, info = play(env, arch);
tell(arch, reward, info)``.

Kept apart from ``agents.base`` so the protocol can be imported without the agent registry.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from nas_gym.spaces.base import Architecture


@runtime_checkable
class AskTell(Protocol):
    """:ivar synchronous: False: asks again as soon as any result arrives (random search,
        evolution, local search, ASHA); True: asks a whole batch and waits for all of it.

    Optional, looked up by the driver: ``reset_options(arch) -> dict | None``, the options of the
    ``env.reset`` that starts the episode evaluating ``arch`` (a multi-fidelity agent's
    ``{"epochs": E}``); without it the episode is reset with none.
    """

    synchronous: bool

    def ask(self) -> Architecture:
        """The next architecture to evaluate, from the results told so far only."""
        ...

    def tell(self, arch: Architecture, reward: float, info: dict[str, Any]) -> None:
        """The result of ``arch`` has arrived."""
        ...


def is_ask_tell(agent: Any) -> bool:
    """Whether ``agent`` (an instance or a class) implements ask/tell."""
    return callable(getattr(agent, "ask", None)) and callable(getattr(agent, "tell", None))
