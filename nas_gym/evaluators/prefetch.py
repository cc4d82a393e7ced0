"""Batching for envs that finish several architectures at once.

A vector env's sub-envs each call ``evaluate`` for their own architecture, one after another.
:class:`PrefetchEvaluator` lets the vector env hand all architectures finishing in one step to
the real evaluator together (``evaluate_many``: trained concurrently by a process or Ray
backend, identical ones trained once), then serves each sub-env its result. Charging happens
once, in the inner evaluator, so budgets stay comparable with the unbatched env.

The wrapper owns the evaluator it wraps, as a gymnasium wrapper owns its env: closing it closes
the inner one, and its state is the inner one's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nas_gym.evaluators.base import EvalResult, EvalStats, Evaluator
from nas_gym.spaces.base import Architecture, SearchSpace


class PrefetchEvaluator:
    """:param inner: the evaluator that really computes and charges results.
    :param batch_size: how many architectures an agent should propose at a time to keep the
        inner evaluator's workers busy (agents read it; nothing here enforces it).
    """

    def __init__(self, inner: Evaluator, batch_size: int = 1) -> None:
        self.inner = inner
        self.batch_size = batch_size
        self._ready: dict[Architecture, list[EvalResult]] = {}

    @property
    def stats(self) -> EvalStats:
        return self.inner.stats

    @property
    def space(self) -> SearchSpace:
        return self.inner.space

    @property
    def num_classes(self) -> int:
        return self.inner.num_classes

    def prefetch(self, archs: Sequence[Architecture]) -> None:
        """Evaluate ``archs`` together; each result is then served once by ``evaluate``."""
        for arch, result in zip(archs, self.inner.evaluate_many(list(archs)), strict=True):
            self._ready.setdefault(arch, []).append(result)

    def evaluate(self, arch: Architecture) -> EvalResult:
        waiting = self._ready.get(arch)
        if waiting:
            result = waiting.pop()
            if not waiting:
                del self._ready[arch]
            return result
        return self.inner.evaluate(arch)

    def evaluate_many(self, archs: Sequence[Architecture]) -> list[EvalResult]:
        missing = [a for a in archs if not self._ready.get(a)]
        if missing:
            self.prefetch(missing)
        return [self.evaluate(a) for a in archs]

    def close(self) -> None:
        self.inner.close()

    def state(self) -> dict[str, Any]:
        """The inner evaluator's: a checkpoint falls between batches, so nothing waits here."""
        return self.inner.state()

    def load_state(self, state: dict[str, Any]) -> None:
        self.inner.load_state(state)

    def seed_run(self, seed: int) -> None:
        self.inner.seed_run(seed)

    @property
    def unwrapped(self) -> Evaluator:
        return self.inner.unwrapped
