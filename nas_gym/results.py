"""What every layer passes around: the result of evaluating one architecture, and the version of
the trainer that produced it.

At the bottom of the package and importing nothing of it, so the trainer, the benchmarks and the
surrogates can name an ``EvalResult`` or ``TRAINER_VERSION`` without importing the evaluators
above them. ``nas_gym.evaluators.base`` and ``nas_gym.storage.cache`` re-export these names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# Bump by hand whenever a change to the trainer (``nas_gym.training.train``) or to a space's model builder
# changes the results it gives: stored results then stop matching, and are trained again.
TRAINER_VERSION = 1

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
