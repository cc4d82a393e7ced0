"""Multi-fidelity evaluation: spend little on most architectures and more on the promising ones.

The trainer's budget (``train.epochs``, or the share of training data ``data.train_fraction``)
is a fidelity knob: a short run ranks architectures roughly as a long one does (about 0.9
Spearman between 12 and 200 epochs on NAS-Bench-201) at a fraction of the cost. Every fidelity
is a different trainer context, so its results are cached apart from the others'.

* ``with_fidelity``: the config at another budget.
* ``MultiFidelityEvaluator``: an Evaluator for the env that rewards at the low fidelity and
  re-evaluates the architectures that look best so far at the high one, for the leaderboard.

Successive halving, a searcher that races a fixed set of architectures up the budgets, is in
``nas_gym.agents.successive_halving``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nas_gym.config import Config, ConfigError, load_config
from nas_gym.evaluators.base import EvalResult, EvalStats, Evaluator, EvaluatorBase
from nas_gym.spaces.base import Architecture

STATS_FIELDS = ("evaluations", "trained", "cache_hits", "failures", "train_seconds")


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


def rank_score(result: EvalResult) -> float:
    """What ranks results of one fidelity: failures below every trained network, even one at 0 accuracy."""
    return result.val_acc if result.ok else -1.0


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

    def rank(self) -> tuple[int, float]:
        """Confirmed results first, then unconfirmed ones, then failures; by score within each."""
        tier = 0 if not self.result.ok else 2 if self.high is not None else 1
        return tier, rank_score(self.result)


class MultiFidelityEvaluator(EvaluatorBase):
    """Rewards at low fidelity; confirms the most promising architectures at high fidelity.

    Every evaluation goes to ``low``, and its result is what the caller (the env) gets, so
    rewards stay cheap and comparable with each other. An architecture whose low score is in
    the top ``promote_top`` of the distinct architectures seen so far (it included; ties count
    in its favour) is re-evaluated once by ``high``. The first architecture is therefore always
    promoted, and promotion gets stricter as more are seen.

    ``stats`` is both evaluators' charges added together: an agent using this evaluator is
    compared with others on what it really spent. ``leaderboard`` ranks confirmed (high)
    results above unconfirmed (low) ones, since the point of confirming is that a lucky short
    run should not win. ``state()`` holds both evaluators' states and every result seen, so a
    resumed search keeps its counts, its promotions and its confirmed results.

    The evaluator owns ``low`` and ``high``: ``close`` closes both.

    :param low: the cheap evaluator (e.g. training for few epochs).
    :param high: the expensive one; same search space.
    :param promote_top: the top fraction, in (0, 1], that gets re-evaluated.
    """

    def __init__(self, low: Evaluator, high: Evaluator, promote_top: float = 0.1) -> None:
        if not 0 < promote_top <= 1:
            raise ValueError(f"promote_top must be in (0, 1], got {promote_top}")
        if low.space != high.space:
            raise ValueError("multi-fidelity: the low and high evaluators have different search spaces")
        self.low, self.high, self.promote_top = low, high, promote_top
        self.space = low.space
        self.num_classes = low.num_classes
        self.stats = EvalStats()
        self._low: dict[str, tuple[Architecture, EvalResult]] = {}  # by canonical key, in order first seen
        self._high: dict[str, EvalResult] = {}  # in promotion order
        self._scores: list[float] = []  # sorted low scores of the distinct architectures seen

    def __repr__(self) -> str:
        return f"MultiFidelityEvaluator(low={self.low!r}, high={self.high!r}, promote_top={self.promote_top})"

    def _in_top(self, result: EvalResult) -> bool:
        n = len(self._scores)
        better = n - bisect.bisect_right(self._scores, rank_score(result))
        return better < math.ceil(self.promote_top * n)

    def _sync(self) -> None:
        for name in STATS_FIELDS:
            setattr(self.stats, name, getattr(self.low.stats, name) + getattr(self.high.stats, name))

    def _seen(self, arch: Architecture, result: EvalResult) -> None:
        self._low[arch.key()] = (arch, result)
        bisect.insort(self._scores, rank_score(result))

    def evaluate_many(self, archs: Sequence[Architecture | str]) -> list[EvalResult]:
        """Low-fidelity results in order; promotions decided in order, then evaluated as one batch
        (a parallel high-fidelity evaluator trains them together)."""
        archs = [self.space.parse(a) if isinstance(a, str) else a for a in archs]
        results = self.low.evaluate_many(archs)
        promote: dict[str, Architecture] = {}
        for arch, result in zip(archs, results, strict=True):
            key = arch.key()
            if key not in self._low:
                self._seen(arch, result)
            if result.ok and key not in self._high and key not in promote and self._in_top(result):
                promote[key] = arch
        if promote:
            self._high.update(zip(promote, self.high.evaluate_many(list(promote.values())), strict=True))
        self._sync()
        return results

    @property
    def promoted(self) -> list[Architecture]:
        """Architectures re-evaluated at high fidelity, in promotion order."""
        return [self._low[key][0] for key in self._high]

    def leaderboard(self, n: int | None = None) -> list[LeaderboardEntry]:
        """The best ``n`` (default all) architectures seen, by their highest-fidelity result."""
        entries = [LeaderboardEntry(a, r, self._high.get(key)) for key, (a, r) in self._low.items()]
        entries.sort(key=LeaderboardEntry.rank, reverse=True)
        return entries[:n]

    def best(self) -> LeaderboardEntry | None:
        """The top of the leaderboard, or None before any evaluation."""
        board = self.leaderboard(1)
        return board[0] if board else None

    def state(self) -> dict[str, Any]:
        return {"low": self.low.state(), "high": self.high.state(),
                "seen": [[a.text(), r.to_dict()] for a, r in self._low.values()],
                "promoted": [[self._low[key][0].text(), r.to_dict()] for key, r in self._high.items()]}

    def load_state(self, state: dict[str, Any]) -> None:
        self.low.load_state(state["low"])
        self.high.load_state(state["high"])
        self._low, self._high, self._scores = {}, {}, []
        for text, result in state["seen"]:
            self._seen(self.space.parse(text), EvalResult.from_dict(result))
        for text, result in state["promoted"]:
            self._high[self.space.parse(text).key()] = EvalResult.from_dict(result)
        self._sync()

    def close(self) -> None:
        self.low.close()
        self.high.close()
