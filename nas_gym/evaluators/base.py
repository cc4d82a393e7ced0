"""The Evaluator protocol, the charged statistics and the base every evaluator shares; the
EvalResult value itself lives in ``nas_gym.results`` (re-exported here).

Every agent, whether it drives the env or calls an evaluator directly, is charged through the
evaluator's ``stats``: evaluations, cache hits and training seconds are counted in one place,
so comparisons between agents are fair.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from nas_gym.results import FAILED, NOT_CACHED_REASONS, OK, OUT_OF_MEMORY, EvalResult

if TYPE_CHECKING:
    from nas_gym.spaces.base import Architecture, SearchSpace

__all__ = ["FAILED", "NOT_CACHED_REASONS", "OK", "OUT_OF_MEMORY", "EvalResult", "EvalStats", "Evaluator",
           "EvaluatorBase", "FidelityEvaluator", "check_unstarted"]


@dataclass
class EvalStats:
    """What an evaluator has been charged: the budget every agent is compared on."""

    evaluations: int = 0  # results returned, cache hits included
    trained: int = 0  # results computed (not from the cache)
    cache_hits: int = 0
    failures: int = 0
    train_seconds: float = 0.0  # seconds spent (or, for a table, simulated) computing results

    @property
    def cache_hit_rate(self) -> float:
        return self.cache_hits / self.evaluations if self.evaluations else 0.0

    def charge_seconds(self, seconds: float) -> None:
        """Charge compute an agent spent itself (a one-shot agent's supernet training), in the
        same kind of seconds as the evaluations' (``nas_gym.oneshot.agents.charged``)."""
        self.train_seconds += seconds

    def charge(self, result: EvalResult, cached: bool) -> None:
        self.evaluations += 1
        self.failures += not result.ok
        if cached:
            self.cache_hits += 1
        else:
            self.trained += 1
            self.train_seconds += result.train_seconds


def check_unstarted(evaluations: int, old: int, new: int) -> None:
    """Refuse a new run seed once results were drawn under the old one: a repeat would then get
    other noise than its first query, which no cache gives.

    :raises RuntimeError: ``evaluations`` were made under another run seed.
    """
    if evaluations and int(new) != old:
        raise RuntimeError(f"run seed {new} set after {evaluations} evaluations under run seed {old}; "
                           "seed the run before its first evaluation (the first reset(seed=...))")


@runtime_checkable
class Evaluator(Protocol):
    """Turns architectures into results; everything the env, the agents and a search ask of one.

    Implementations: training (``nas_gym.evaluators.training``, whatever its backend), table,
    proxy, synthetic, multi-fidelity, and the prefetching wrapper. Subclassing
    :class:`EvaluatorBase` gives the defaults most of them need.

    :ivar space: the search space whose architectures it scores.
    :ivar num_classes: classes of the task (the chance level of a failure's reward).
    :ivar stats: what it has been charged; the budget agents are compared on.
    :ivar batch_size: how many architectures an agent should propose at a time (then handed
        over together with ``prefetch``) to keep parallel workers busy; 1 when batching gains nothing.
    """

    space: SearchSpace
    num_classes: int
    stats: EvalStats
    batch_size: int

    def evaluate(self, arch: Architecture) -> EvalResult:
        """The result of one architecture, charged to ``stats``."""

    def evaluate_many(self, archs: Sequence[Architecture]) -> list[EvalResult]:
        """Results in the order of ``archs``; a parallel evaluator computes them together."""

    def prefetch(self, archs: Sequence[Architecture]) -> None:
        """A hint that ``archs`` will be evaluated next, one by one: a batching evaluator
        computes them together now; others ignore it."""

    def close(self) -> None:
        """Release workers, files and connections; safe to call twice. An evaluator closes the
        evaluators it wraps; whoever made an evaluator closes it (an env closes only one it made)."""

    def state(self) -> dict[str, Any]:
        """Everything a resumed search needs to continue charging and ranking as if it had never
        stopped (JSON-ready); the persistent cache holds the results themselves."""

    def load_state(self, state: dict[str, Any]) -> None:
        """Take back what ``state()`` returned, in a fresh evaluator of the same kind and config."""

    def seed_run(self, seed: int) -> None:
        """Make ``seed`` the run seed of the noise drawn per run (the table's training seed per
        architecture, the surrogate's sampled accuracy), before anything is evaluated: how an env
        passes on the first ``reset(seed=...)``. Evaluators that draw nothing per run ignore it."""

    @property
    def unwrapped(self) -> Evaluator:
        """The evaluator under any wrapper (like ``gymnasium.Env.unwrapped``): itself if none."""


@runtime_checkable
class FidelityEvaluator(Evaluator, Protocol):
    """An evaluator that answers at a chosen number of epochs (a table with learning curves), for
    multi-fidelity agents: successive halving asks for many architectures at few epochs and pays
    only for those.

    :ivar max_epochs: the most epochs it can answer at.
    """

    max_epochs: int

    def evaluate_at(self, arch: Architecture, epochs: int | None) -> EvalResult:
        """The result after ``epochs`` epochs (None: the evaluator's default), charged only for
        epochs of ``arch`` not paid for before."""


def fidelity_problem(evaluator: Evaluator) -> str | None:
    """Why ``evaluator`` (under any wrapper) cannot answer at a chosen number of epochs, or None
    when it can. One rule for the env's ``reset(options={"epochs": E})`` and for the leaderboard's
    note on multi-fidelity agents, so the two never disagree."""
    ev = evaluator.unwrapped
    if not isinstance(ev, FidelityEvaluator):
        return (f"the {type(ev).__name__} cannot answer at a chosen number of epochs (not a FidelityEvaluator); use "
                "--evaluator train (real training) or --evaluator table on a preset whose table has learning curves")
    # a TableEvaluator has evaluate_at whatever its table holds; only a table with curves answers at epoch E
    table = getattr(ev, "table", None)
    if table is not None and table.max_epochs is None:
        return (f"table {table.path.name} has no learning curves (its rows have no 'curves'), so it answers after "
                "the full budget only; use a table built with scripts/build_table.py --curves")
    return None


class EvaluatorBase:
    """Defaults for the :class:`Evaluator` protocol: no batching, nothing to release, and a
    state that is the budget charged so far. Subclasses set ``space``, ``num_classes`` and
    ``stats`` and override what they hold beyond that."""

    batch_size: int = 1
    space: SearchSpace
    num_classes: int
    stats: EvalStats

    def evaluate_many(self, archs: Sequence[Architecture]) -> list[EvalResult]:
        raise NotImplementedError

    def evaluate(self, arch: Architecture) -> EvalResult:
        return self.evaluate_many([arch])[0]

    def prefetch(self, archs: Sequence[Architecture]) -> None:
        """Nothing to gain from knowing ahead: results are computed when asked for."""

    def close(self) -> None:
        """Nothing to release."""

    def state(self) -> dict[str, Any]:
        return {"stats": dataclasses.asdict(self.stats)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.stats = EvalStats(**state.get("stats", {}))

    def seed_run(self, seed: int) -> None:
        """Nothing is drawn per run: a trainer's seed is part of the config, not of the run."""

    @property
    def unwrapped(self) -> Evaluator:
        return self  # type: ignore[return-value]
