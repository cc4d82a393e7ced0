"""Multi-fidelity search: spend little on most architectures and more on the promising ones.

The trainer's budget (``train.epochs``, or the share of training data ``data.train_fraction``)
is a fidelity knob: a short run ranks architectures roughly as a long one does (about 0.9
Spearman between 12 and 200 epochs on NAS-Bench-201) at a fraction of the cost. Every fidelity
is a different trainer context, so its results are cached apart from the others'.

* ``with_fidelity``: the config at another budget.
* ``SuccessiveHalving`` (Jamieson & Talwalkar 2016; the inner loop of Hyperband): evaluate all
  at the lowest budget, keep the best ``1/eta``, re-evaluate them at ``eta`` times the budget,
  and so on up to the highest.
* ``MultiFidelityEvaluator``: an Evaluator for the env that rewards at the low fidelity and
  re-evaluates the architectures that look best so far at the high one, for the leaderboard.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nas_gym.config import Config, ConfigError, load_config
from nas_gym.evaluators.base import EvalResult, EvalStats, Evaluator
from nas_gym.space import Architecture

EvaluatorFactory = Callable[[float], Evaluator]


def with_fidelity(config: Config, epochs: float | None = None, train_fraction: float | None = None) -> Config:
    """``config`` with another trainer budget, validated like any override; the name is kept.

    :raises ConfigError: epochs not a whole number >= 1, or a fraction outside (0, 1].
    """
    overrides: dict[str, Any] = {}
    if epochs is not None:
        if float(epochs) != round(float(epochs)):
            raise ConfigError(f"with_fidelity: epochs must be a whole number, got {epochs}")
        overrides["train.epochs"] = int(round(float(epochs)))
    if train_fraction is not None:
        overrides["data.train_fraction"] = float(train_fraction)
    return load_config(config, overrides)


def training_factory(config: Config, knob: str = "epochs", kind: str = "train", **kwargs: Any) -> EvaluatorFactory:
    """A factory for ``SuccessiveHalving``: budget -> ``make_evaluator(with_fidelity(config, knob=budget), kind)``.

    :param knob: ``epochs`` or ``train_fraction``.
    :param kwargs: passed to ``make_evaluator`` (e.g. one ``cache`` shared by all fidelities:
        their contexts differ, so their results never mix).
    """
    if knob not in ("epochs", "train_fraction"):
        raise ConfigError(f"fidelity knob {knob!r} is not one of epochs, train_fraction")

    def make(budget: float) -> Evaluator:
        from nas_gym.evaluators import make_evaluator

        return make_evaluator(with_fidelity(config, **{knob: budget}), kind, **kwargs)

    return make


def _score(result: EvalResult) -> float:
    """Failures rank below every trained network, even one at 0 accuracy."""
    return result.val_acc if result.ok else -1.0


def _unique(archs: Sequence[Architecture | str]) -> list[Architecture]:
    return list(dict.fromkeys(Architecture.parse(a) if isinstance(a, str) else a for a in archs))


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
        """Race ``archs`` (repeats dropped) up the budgets; see the class docstring."""
        survivors = _unique(archs)
        if not survivors:
            raise ValueError("successive halving: no architectures to race")
        reached: dict[Architecture, tuple[int, EvalResult]] = {}
        rungs = []
        budgets = self.budgets
        for k, budget in enumerate(budgets):
            results = self.evaluator(budget).evaluate_many(survivors)
            rungs.append(Rung(budget, tuple(zip(survivors, results, strict=True))))
            reached.update((a, (k, r)) for a, r in zip(survivors, results, strict=True))
            if k + 1 < len(budgets):
                ranked = sorted(zip(survivors, results, strict=True), key=lambda ar: _score(ar[1]), reverse=True)
                survivors = [a for a, _ in ranked[: max(1, int(len(survivors) // self.eta))]]
        order = sorted(reached, key=lambda a: (reached[a][0], _score(reached[a][1])), reverse=True)
        seconds = sum(ev.stats.train_seconds for ev in self.evaluators.values())
        return HalvingResult(tuple((a, reached[a][1]) for a in order), tuple(rungs), seconds)


@dataclass(frozen=True)
class LeaderboardEntry:
    """One architecture: its low-fidelity result and, if it was promoted, its high-fidelity one."""

    arch: Architecture
    low: EvalResult
    high: EvalResult | None

    @property
    def result(self) -> EvalResult:
        """The highest-fidelity result seen."""
        return self.high if self.high is not None else self.low

    def _key(self) -> tuple[int, float]:
        tier = 0 if not self.result.ok else 2 if self.high is not None else 1
        return tier, _score(self.result)


class MultiFidelityEvaluator:
    """Rewards at low fidelity; confirms the most promising architectures at high fidelity.

    Every evaluation goes to ``low``, and its result is what the caller (the env) gets, so
    rewards stay cheap and comparable with each other. An architecture whose low score is in
    the top ``promote_top`` of the distinct architectures seen so far (it included; ties count
    in its favour) is re-evaluated once by ``high``. The first architecture is therefore always
    promoted, and promotion gets stricter as more are seen.

    ``stats`` is both evaluators' charges added together: an agent using this evaluator is
    compared with others on what it really spent. ``leaderboard`` ranks confirmed (high)
    results above unconfirmed (low) ones, since the point of confirming is that a lucky short
    run should not win.

    :param low: the cheap evaluator (e.g. training for few epochs).
    :param high: the expensive one; same search space.
    :param promote_top: the top fraction, in (0, 1], that gets re-evaluated.
    """

    def __init__(self, low: Evaluator, high: Evaluator, promote_top: float = 0.1) -> None:
        if not 0 < promote_top <= 1:
            raise ValueError(f"promote_top must be in (0, 1], got {promote_top}")
        low_space, high_space = getattr(low, "space", None), getattr(high, "space", None)
        if low_space is not None and high_space is not None and low_space != high_space:
            raise ValueError("multi-fidelity: the low and high evaluators have different search spaces")
        self.low, self.high, self.promote_top = low, high, promote_top
        self.space = low_space
        self.num_classes = getattr(low, "num_classes", 10)
        self.stats = EvalStats()
        self._low: dict[Architecture, EvalResult] = {}
        self._high: dict[Architecture, EvalResult] = {}
        self._scores: list[float] = []  # sorted low scores of the distinct architectures seen

    def __repr__(self) -> str:
        return f"MultiFidelityEvaluator(low={self.low!r}, high={self.high!r}, promote_top={self.promote_top})"

    def _in_top(self, result: EvalResult) -> bool:
        n = len(self._scores)
        better = n - bisect.bisect_right(self._scores, _score(result))
        return better < math.ceil(self.promote_top * n)

    def _sync(self) -> None:
        for name in ("evaluations", "trained", "cache_hits", "failures", "train_seconds"):
            setattr(self.stats, name, getattr(self.low.stats, name) + getattr(self.high.stats, name))

    def evaluate(self, arch: Architecture) -> EvalResult:
        """The low-fidelity result of ``arch`` (and a high-fidelity one kept aside if it is promising)."""
        return self.evaluate_many([arch])[0]

    def evaluate_many(self, archs: Sequence[Architecture]) -> list[EvalResult]:
        """Low-fidelity results in order; promotions decided in order, then evaluated as one batch
        (a parallel high-fidelity evaluator trains them together)."""
        archs = [Architecture.parse(a) if isinstance(a, str) else a for a in archs]
        results = self.low.evaluate_many(archs)
        promote: list[Architecture] = []
        for arch, result in zip(archs, results, strict=True):
            if arch not in self._low:
                self._low[arch] = result
                bisect.insort(self._scores, _score(result))
            if result.ok and arch not in self._high and arch not in promote and self._in_top(result):
                promote.append(arch)
        if promote:
            self._high.update(zip(promote, self.high.evaluate_many(promote), strict=True))
        self._sync()
        return results

    @property
    def promoted(self) -> list[Architecture]:
        """Architectures re-evaluated at high fidelity, in promotion order."""
        return list(self._high)

    def leaderboard(self, n: int | None = None) -> list[LeaderboardEntry]:
        """The best ``n`` (default all) architectures seen, by their highest-fidelity result."""
        entries = [LeaderboardEntry(a, r, self._high.get(a)) for a, r in self._low.items()]
        entries.sort(key=LeaderboardEntry._key, reverse=True)
        return entries[:n]

    def best(self) -> LeaderboardEntry | None:
        """The top of the leaderboard, or None before any evaluation."""
        board = self.leaderboard(1)
        return board[0] if board else None

    def close(self) -> None:
        for ev in (self.low, self.high):
            close = getattr(ev, "close", None)
            if close is not None:
                close()
