"""MetaQNN's figure for Q-learning: mean validation accuracy of the architectures sampled at
each epsilon (Baker et al., ICLR 2017), written as the TensorBoard scalar
``nas/mean_val_acc_by_epsilon``.

It belongs to the agent, which knows its epsilon schedule; the search recorder only gives it a
place to write, ``env.record_scalar(tag, value, step)``. The step is ``round(100 * (1 -
epsilon))``, so the x axis runs from pure exploration (0) to the greediest stage (90 for epsilon
0.1), as in the paper. The points are written once, when the schedule's budget is spent: a point
written mid-run could later be hidden by a resumed run's ``purge_step`` (TensorBoard drops every
step from the resumed episode on, whatever the tag), and the tallies travel in the agent's own
checkpoint instead.
"""

from __future__ import annotations

from collections.abc import Callable

TAG = "nas/mean_val_acc_by_epsilon"


class AccuracyByEpsilon:
    """Running sums of validation accuracy per epsilon.

    :param sink: ``record_scalar(tag, value, step)`` of the env's recorder, or None (nothing is
        written; the tallies are still kept, so a checkpoint is the same either way).
    """

    def __init__(self, sink: Callable[[str, float, int], None] | None) -> None:
        self.sink = sink
        self.tallies: dict[float, tuple[float, int]] = {}  # epsilon -> (sum of val_acc, count)

    def add(self, epsilon: float, val_acc: float | None) -> None:
        """One episode played at ``epsilon``; ``val_acc`` None for an episode that evaluated
        nothing (a forbidden action ended it)."""
        if val_acc is not None:
            total, count = self.tallies.get(epsilon, (0.0, 0))
            self.tallies[epsilon] = (total + float(val_acc), count + 1)

    def write(self) -> None:
        """One point per epsilon seen, from the most exploring to the greediest."""
        if self.sink is None:
            return
        for epsilon, (total, count) in sorted(self.tallies.items(), reverse=True):
            self.sink(TAG, total / count, round(100 * (1 - epsilon)))

    def state(self) -> list[list[float]]:
        """``[[epsilon, sum, count], ...]`` (JSON-ready; floats round-trip exactly)."""
        return [[eps, total, count] for eps, (total, count) in self.tallies.items()]

    def load(self, state: list[list[float]]) -> None:
        self.tallies = {float(eps): (float(total), int(count)) for eps, total, count in state}
