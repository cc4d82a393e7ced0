"""An instant, made-up evaluator with a known optimum: for testing env logic and agents.

Like SB3's ``IdentityEnv``, it ships in the package so tests and agent research need no
training. The score is additive over positions (``W[position, op]``), so the best architecture
is found exactly by dynamic programming and an agent that learns the per-position preferences
can reach it; the weights come from a seeded generator, so every seed is a different problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from nas_gym.evaluators.base import EvalResult, EvalStats
from nas_gym.space import Architecture, ArchitectureError, SearchSpace


class SyntheticEvaluator:
    """Validation accuracy ``0.5 + 0.45 * sum_i W[i, op_i] / max_depth`` with ``W ~ U(-0.5, 1)``.

    :param space: the search space whose architectures it scores.
    :param seed: seed of the weight table.
    :param num_classes: reported to reward functions (chance level of a failure).
    """

    def __init__(self, space: SearchSpace, seed: int = 0, num_classes: int = 10) -> None:
        self.space = space
        self.num_classes = num_classes
        self.stats = EvalStats()
        self.weights = np.random.default_rng(seed).uniform(-0.5, 1.0, size=(space.max_depth, len(space.ops)))

    def score(self, arch: Architecture) -> float:
        total = sum(self.weights[i, self.space.action_of(op)] for i, op in enumerate(arch.ops))
        return float(0.5 + 0.45 * total / self.space.max_depth)

    def evaluate(self, arch: Architecture) -> EvalResult:
        reason = self.space.violation(arch)
        if reason:
            raise ArchitectureError(f"architecture {arch} is not in the search space: {reason}")
        params = sum(op.channels * op.kernel for op in arch.ops) + 10
        result = EvalResult(arch=arch.text(), val_acc=self.score(arch), params=params, flops=params * 40,
                            train_loss=0.0, fidelity=1.0)
        self.stats.charge(result, cached=False)
        return result

    def evaluate_many(self, archs: Sequence[Architecture]) -> list[EvalResult]:
        return [self.evaluate(a) for a in archs]

    def optimum(self) -> tuple[Architecture, float]:
        """The best architecture and its accuracy, exactly, by dynamic programming over states."""
        space = self.space

        @cache
        def best(state) -> tuple[float, tuple]:  # (sum of weights still to come, ops)
            options = [(0.0, ())] if state.depth >= space.min_depth else []
            for a, op in enumerate(space.ops):
                if space._allowed(state, op) is None:
                    rest, ops = best(space._next(state, op))
                    options.append((self.weights[state.depth, a] + rest, (op,) + ops))
            return max(options, key=lambda o: o[0])

        _, ops = best(space._state(()))
        arch = Architecture(ops)
        return arch, self.score(arch)
