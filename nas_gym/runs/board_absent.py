"""Why a built-in agent is missing from a leaderboard section.

A reader who finds no PPO row under four simulated workers, or no Hyperband row on a table
without learning curves, should not have to guess whether it lost, crashed or was never run.
Each section therefore lists every built-in agent it lacks with the reason, derived from what
the agent declares (ask/tell, multi-fidelity, supernet training) and what the benchmark offers
(simulated workers, learning curves), never from a hand-kept list of names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nas_gym.config import Config

NOT_RUN = "not run for this section"


def absence_reason(agent_cls: type, workers: int, has_curves: bool) -> str:
    """The reason an agent of class ``agent_cls`` has no row in a section run on ``workers``
    simulated workers over a benchmark with (``has_curves``) or without learning curves."""
    from nas_gym.agents.base import is_ask_tell
    from nas_gym.agents.fidelity import FidelityAgent

    if getattr(agent_cls, "trains_supernet", False):
        return "trains a weight-sharing supernet for real, which no table replays; compared apart in docs/one_shot.md"
    if issubclass(agent_cls, FidelityAgent) and not has_curves:
        return "multi-fidelity, and this benchmark answers after the full budget only, with no learning curves"
    if workers > 1 and not is_ask_tell(agent_cls):
        return f"has no ask/tell, so it cannot run on {workers} simulated workers: it learns from each episode in turn"
    return NOT_RUN


def answers_at_epochs(config: Config, kind: str) -> bool:
    """Whether the benchmark's evaluator answers after a chosen number of epochs (a table with
    learning curves does; a table of final results or the surrogate does not)."""
    from nas_gym.evaluators import make_evaluator
    from nas_gym.evaluators.base import fidelity_problem

    return fidelity_problem(make_evaluator(config, kind=kind)) is None


def absent_agents(shown: Iterable[str], workers: int, has_curves: bool) -> dict[str, str]:
    """Every built-in agent not in ``shown``, with :func:`absence_reason`."""
    from nas_gym.agents.base import BUILTIN_AGENTS, AgentError, resolve_agent

    present, out = set(shown), {}
    for name in BUILTIN_AGENTS:
        if name in present:
            continue
        try:
            out[name] = absence_reason(resolve_agent(name), workers, has_curves)
        except AgentError as e:  # an optional extra not installed where the board was built
            out[name] = str(e)
    return out


def absent_lines(absent: dict[str, str]) -> list[str]:
    """One note line per reason, naming the agents it applies to (the page's order)."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in absent.items():
        by_reason.setdefault(reason, []).append(name)
    return [f"Not on this board: {', '.join(names)} ({reason})." for reason, names in by_reason.items()]
