"""The Evaluator protocol and the EvalResult value every evaluator returns.

Every agent, whether it drives the env or calls an evaluator directly, is charged through the
evaluator's ``stats``: evaluations, cache hits and training seconds are counted in one place,
so comparisons between agents are fair.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from nas_gym.space import Architecture

OK, FAILED = "ok", "failed"


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


@runtime_checkable
class Evaluator(Protocol):
    """Turns architectures into results. Implementations: training, table, proxy."""

    stats: EvalStats

    def evaluate(self, arch: Architecture) -> EvalResult: ...

    def evaluate_many(self, archs: Sequence[Architecture]) -> list[EvalResult]: ...
