"""The Evaluator protocol and the EvalResult value every evaluator returns.

Every agent, whether it drives the env or calls an evaluator directly, is charged through the
evaluator's ``stats``: evaluations, cache hits and training seconds are counted in one place,
so comparisons between agents are fair.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from nas_gym.spaces.base import Architecture, SearchSpace

OK, FAILED = "ok", "failed"
# Failures that say something went wrong around the architecture, not what it is: our own code
# raised, the worker process running it died, or the device's memory ran out (which depends on the
# device and on whatever else held memory on it then). They are never cached (see ``EvalResult.cacheable``).
NOT_CACHED_REASONS = ("exception:", "worker_died", "out_of_memory")
OUT_OF_MEMORY = "out_of_memory"


@dataclass(frozen=True)
class EvalResult:
    """The outcome of evaluating one architecture.

    :param arch: canonical architecture text.
    :param val_acc: validation accuracy in [0, 1] (0 for a failure); the reward's input.
    :param test_acc: test accuracy, only when explicitly asked for (final reports), else None.
    :param train_loss: mean training loss over the last epoch (nan for a failure).
    :param params: trainable parameters.
    :param flops: multiply-accumulates of one forward pass of one sample.
    :param train_seconds: wall-clock seconds spent training (or recorded, for a table).
    :param status: ``ok`` or ``failed``.
    :param reason: why it failed (``nan_loss``, ``out_of_memory``, ``too_many_params: ...``,
        ``exception: ...``), empty when ok.
    :param fidelity: training budget in epochs the accuracy was measured at.
    :param latency_ms: median batch-1 forward latency on the evaluating machine, in ms; None
        unless the reward's cost is ``latency`` (only the training evaluator measures it, see
        ``nas_gym.rewards``). The evaluator attaches it after the cache, so it is not stored:
        it belongs to a machine, not to the training context. Rows without it load with None.
    """

    arch: str
    val_acc: float
    params: int
    flops: int
    train_seconds: float = 0.0
    train_loss: float = float("nan")
    test_acc: float | None = None
    status: str = OK
    reason: str = ""
    fidelity: float = 0.0
    latency_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def cacheable(self) -> bool:
        """Whether the result is a property of the architecture under its training context, one
        that training it again would give again: a score, NaN loss, too many parameters. A
        failure of our own code (``exception: ...``), of a worker process (``worker_died: ...``)
        or of the device's memory (``out_of_memory``: another GPU, or the same one without a
        neighbour's allocations, may fit it) is not: elsewhere, or after a fix, it may well train."""
        return self.ok or not self.reason.startswith(NOT_CACHED_REASONS)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalResult:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def failure(cls, arch: str, reason: str, params: int = 0, flops: int = 0, train_seconds: float = 0.0,
                fidelity: float = 0.0) -> EvalResult:
        return cls(arch=arch, val_acc=0.0, params=params, flops=flops, train_seconds=train_seconds,
                   status=FAILED, reason=reason, fidelity=fidelity)


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
