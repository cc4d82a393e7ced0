"""What every architecture of a space scores, known without search: the yardstick of comparisons.

A comparison reports what a run hands back against the space's own numbers: the test accuracy of
the returned architecture (from the table, never shown to the search), its regret against the
optimum by mean validation accuracy, and whether it reached the top 1%. Those numbers come from
here, apart from the runs, so the same yardstick serves ``nas-gym compare``, the benchmark
scripts and the leaderboard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nas_gym.config import Config
from nas_gym.spaces.base import Architecture

TOP_FRACTION = 0.01


@dataclass(frozen=True)
class Reference:
    """What every architecture of the space scores, known without search: for reports only.

    :param scores: mean validation accuracy of every distinct architecture that trained.
    :param value: the mean validation accuracy of one architecture (0 for a failed one).
    :param test: its test accuracy (mean over the table's seeds), None without a table.
    :param optimum_test: test accuracy of the optimum by mean validation accuracy.
    :param best_test: the highest test accuracy in the table (an oracle no search can aim at).
    :param mean_seconds: mean simulated training seconds of one architecture (table only).
    """

    scores: np.ndarray
    value: Callable[[Architecture], float]
    test: Callable[[Architecture], float | None] | None = None
    optimum_test: float | None = None
    best_test: float | None = None
    mean_seconds: float | None = None

    @property
    def optimum(self) -> float:
        return float(self.scores.max())

    @property
    def threshold(self) -> float:
        """Mean validation accuracy at which the top ``TOP_FRACTION`` of the space starts."""
        return float(np.quantile(self.scores, 1.0 - TOP_FRACTION))


def reference_for(config: Config, evaluator_kind: str | None) -> Reference | None:
    """The table's numbers (mean over its seeds, or its fixed seed if ``evaluator.table_seed``
    names one), or the synthetic evaluator's scores; None for other evaluators."""
    from nas_gym.evaluators import make_evaluator
    from nas_gym.evaluators.table import TableEvaluator

    kind = evaluator_kind or config.evaluator.kind
    if kind not in ("table", "synthetic"):
        return None
    evaluator = make_evaluator(config, kind=kind)
    if isinstance(evaluator, TableEvaluator):
        results = evaluator.all_results()
        by_key = {a.key(): r.val_acc for a, r in zip(evaluator.table.archs, results, strict=True)}
        tests = [t for t in (evaluator.test_acc(a) for a in evaluator.table.archs) if t is not None]
        return Reference(np.array([r.val_acc for r in results if r.ok]), lambda a: by_key[a.key()],
                         evaluator.test_acc, evaluator.test_acc(evaluator.optimum()[0]), max(tests),
                         float(np.mean([r.train_seconds for r in results])))
    size = evaluator.space.size()
    if size is None or size > 200_000:
        return None
    return Reference(np.array([evaluator.score(a) for a in evaluator.space.enumerate()]), evaluator.score)


