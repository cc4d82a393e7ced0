"""An instant, made-up evaluator with a known optimum: for testing env logic and agents.

Like SB3's ``IdentityEnv``, it ships in the package so tests and agent research need no
training. The score is additive over the episode's steps (``W[step, action]``), so the best architecture
is found exactly by dynamic programming over the space's transition keys, and an agent that
learns the per-step preferences can reach it; any space works; the weights come from a seeded generator, so every seed is a different problem.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas_gym.evaluators.base import EvalResult, EvalStats, EvaluatorBase
from nas_gym.spaces.base import Architecture, ArchitectureError, SearchSpace


class SyntheticEvaluator(EvaluatorBase):
    """Validation accuracy ``0.5 + 0.45 * sum_t W[t, a_t] / max_steps`` over the actions ``a_t``
    that build the architecture, with ``W ~ U(-0.5, 1)``.

    :param space: the search space whose architectures it scores.
    :param seed: seed of the weight table.
    :param num_classes: reported to reward functions (chance level of a failure).
    """

    def __init__(self, space: SearchSpace, seed: int = 0, num_classes: int = 10) -> None:
        self.space = space
        self.num_classes = num_classes
        self.stats = EvalStats()
        self.weights = np.random.default_rng(seed).uniform(-0.5, 1.0, size=(space.max_steps, space.n_actions))

    def score(self, arch: Architecture) -> float:
        total = sum(self.weights[t, a] for t, a in enumerate(self.space.actions_of(arch)))
        return float(0.5 + 0.45 * total / self.space.max_steps)

    def evaluate(self, arch: Architecture) -> EvalResult:
        reason = self.space.violation(arch)
        if reason:
            raise ArchitectureError(f"architecture {arch.text()} is not in the search space: {reason}")
        params = 10 + int(sum(37 * (a + 1) for a in self.space.actions_of(arch)))
        result = EvalResult(arch=arch.text(), val_acc=self.score(arch), params=params, flops=params * 40,
                            train_loss=0.0, fidelity=1.0)
        self.stats.charge(result, cached=False)
        return result

    def evaluate_many(self, archs: Sequence[Architecture]) -> list[EvalResult]:
        return [self.evaluate(a) for a in archs]

    def close(self) -> None:
        """Nothing to release."""

    def optimum(self) -> tuple[Architecture, float]:
        """The best architecture and its accuracy, exactly, by dynamic programming over (step,
        the space's transition key): the rest of an episode depends on nothing else."""
        space, memo = self.space, {}

        def best(partial, t: int) -> tuple[float, tuple[int, ...]]:
            key = (t, space.transition_key(partial))
            if key not in memo:
                options = []
                for a in map(int, np.flatnonzero(space.mask(partial))):
                    nxt, complete = space.step(partial, a)
                    rest, actions = (0.0, ()) if complete else best(nxt, t + 1)
                    options.append((self.weights[t, a] + rest, (a,) + actions))
                memo[key] = max(options, key=lambda o: o[0])
            return memo[key]

        arch = space.empty()
        for a in best(arch, 0)[1]:
            arch, _ = space.step(arch, a)
        return arch, self.score(arch)
