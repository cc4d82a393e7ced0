"""Successive halving (Jamieson & Talwalkar 2016; the inner loop of Hyperband): race a fixed set
of architectures up the training budgets.

Evaluate all at the lowest budget, keep the best ``1/eta``, re-evaluate them at ``eta`` times the
budget, and so on up to the highest. A short run ranks architectures roughly as a long one does
(see ``nas_gym.evaluators.multi_fidelity``), so most of the compute goes to the few that matter.

Unlike the env-driving agents, it thinks in whole sets of architectures and calls one evaluator
per budget directly; each evaluator charges its own ``stats``, so its cost is counted the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nas_gym.config import Config, ConfigError
from nas_gym.evaluators import make_evaluator
from nas_gym.evaluators.base import EvalResult, Evaluator, FidelityEvaluator
from nas_gym.evaluators.multi_fidelity import rank_score, with_fidelity
from nas_gym.spaces.base import Architecture

EvaluatorFactory = Callable[[float], Evaluator]


def training_factory(config: Config, knob: str = "epochs", kind: str = "train", **kwargs: Any) -> EvaluatorFactory:
    """A factory for ``SuccessiveHalving``: budget -> ``make_evaluator(with_fidelity(config, knob=budget), kind)``.

    :param knob: ``epochs`` or ``train_fraction``.
    :param kwargs: passed to ``make_evaluator`` (e.g. one ``cache`` shared by all fidelities:
        their contexts differ, so their results never mix).
    """
    if knob not in ("epochs", "train_fraction"):
        raise ConfigError(f"fidelity knob {knob!r} is not one of epochs, train_fraction")

    def make(budget: float) -> Evaluator:
        return make_evaluator(with_fidelity(config, **{knob: budget}), kind, **kwargs)

    return make


class _AtEpochs:
    """One fidelity of a :class:`FidelityEvaluator` (a table with learning curves): answers at
    ``epochs`` and charges the shared evaluator, which pays only for epochs of an architecture
    not paid for yet, as if its training continued from the last rung."""

    def __init__(self, evaluator: FidelityEvaluator, epochs: int) -> None:
        self.inner, self.epochs = evaluator, epochs
        self.space, self.num_classes, self.stats = evaluator.space, evaluator.num_classes, evaluator.stats

    def evaluate_many(self, archs: Sequence[Architecture]) -> list[EvalResult]:
        return [self.inner.evaluate_at(a, self.epochs) for a in archs]


def table_factory(evaluator: Evaluator) -> EvaluatorFactory:
    """A factory for ``SuccessiveHalving`` over one table with learning curves: budget ->
    answers after that many epochs (rounded to a whole epoch, at least 1), all charged to
    ``evaluator``, so a rung pays only for the epochs it adds.

    :raises ConfigError: the evaluator cannot answer at a chosen epoch.
    """
    if not isinstance(evaluator, FidelityEvaluator) or evaluator.unwrapped is not evaluator:
        raise ConfigError(f"successive halving on a table needs an evaluator with learning curves, not {evaluator!r}")

    def make(budget: float) -> Evaluator:
        return _AtEpochs(evaluator, max(1, round(budget)))  # type: ignore[return-value]

    return make


@dataclass(frozen=True)
class Rung:
    """One round of successive halving: the budget and what was evaluated at it."""

    budget: float
    results: tuple[tuple[Architecture, EvalResult], ...]


@dataclass(frozen=True)
class HalvingResult:
    """:param ranking: every architecture with its result at the highest budget it reached, best
        first: those that reached a higher rung rank above those eliminated earlier (their scores
        are not comparable across budgets), then by validation accuracy.
    :param rungs: the rounds, lowest budget first.
    :param train_seconds: what all evaluators charged, cache hits free.
    """

    ranking: tuple[tuple[Architecture, EvalResult], ...]
    rungs: tuple[Rung, ...]
    train_seconds: float

    @property
    def best(self) -> tuple[Architecture, EvalResult]:
        return self.ranking[0]


class SuccessiveHalving:
    """Successive halving over a fixed set of architectures.

    Budgets run from ``max_budget`` down by factors of ``eta`` while they stay >= ``min_budget``
    (27, 9, 3, 1 for eta 3 and budgets 1-27), so the top rung is exactly the budget one cares
    about. Each rung keeps ``max(1, n // eta)`` architectures; the survivors are re-evaluated
    up to the top rung even once a single one is left, so the winner's reported score is
    always at the highest fidelity.

    :param factory: budget -> evaluator at that fidelity (e.g. ``training_factory``); called
        once per budget, the evaluators are kept in ``self.evaluators``.
    :param eta: the halving rate (> 1).
    :param min_budget: the lowest budget (epochs, or a training fraction).
    :param max_budget: the highest budget.
    """

    def __init__(self, factory: EvaluatorFactory, eta: float = 3, min_budget: float = 1, max_budget: float = 27) -> None:
        if eta <= 1:
            raise ValueError(f"successive halving: eta must be > 1, got {eta}")
        if not 0 < min_budget <= max_budget:
            raise ValueError(f"successive halving: need 0 < min_budget <= max_budget, got {min_budget}, {max_budget}")
        self.factory, self.eta = factory, eta
        self.min_budget, self.max_budget = min_budget, max_budget
        self.evaluators: dict[float, Evaluator] = {}

    @property
    def budgets(self) -> list[float]:
        top = math.floor(math.log(self.max_budget / self.min_budget) / math.log(self.eta) + 1e-9)
        return [self.max_budget / self.eta ** (top - k) for k in range(top + 1)]

    def evaluator(self, budget: float) -> Evaluator:
        if budget not in self.evaluators:
            self.evaluators[budget] = self.factory(budget)
        return self.evaluators[budget]

    def run(self, archs: Sequence[Architecture | str]) -> HalvingResult:
        """Race ``archs`` (repeats dropped: texts parsed, equal keys merged) up the budgets."""
        budgets = self.budgets
        space = self.evaluator(budgets[0]).space
        unique: dict[str, Architecture] = {}
        for arch in archs:
            arch = space.parse(arch) if isinstance(arch, str) else arch
            unique.setdefault(arch.key(), arch)
        survivors = list(unique.values())
        if not survivors:
            raise ValueError("successive halving: no architectures to race")
        reached: dict[Architecture, tuple[int, EvalResult]] = {}
        rungs = []
        for k, budget in enumerate(budgets):
            results = self.evaluator(budget).evaluate_many(survivors)
            rungs.append(Rung(budget, tuple(zip(survivors, results, strict=True))))
            reached.update((a, (k, r)) for a, r in zip(survivors, results, strict=True))
            if k + 1 < len(budgets):
                ranked = sorted(zip(survivors, results, strict=True), key=lambda ar: rank_score(ar[1]), reverse=True)
                survivors = [a for a, _ in ranked[: max(1, int(len(survivors) // self.eta))]]
        order = sorted(reached, key=lambda a: (reached[a][0], rank_score(reached[a][1])), reverse=True)
        stats = {id(ev.stats): ev.stats for ev in self.evaluators.values()}  # fidelities may share one evaluator
        seconds = sum(st.train_seconds for st in stats.values())
        return HalvingResult(tuple((a, reached[a][1]) for a in order), tuple(rungs), seconds)
