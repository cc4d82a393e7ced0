"""TensorBoard events of a search: curves, reward histograms, figures and the HParams entry.

Axes: every ``nas/*`` scalar, text and histogram is written here, in the run folder's own event
stream, with the episode number as its step (the histograms of ``nas/reward_by_stage`` too: the
episode that closed the stage), so a resumed run's ``purge_step`` hides exactly what the killed
process wrote after its checkpoint. The exception is ``nas/mean_val_acc_by_epsilon`` (Q-learning,
MetaQNN's figure), whose step is ``100 * (1 - epsilon)``, written once when its schedule ends.
SB3 agents write only their own ``rollout/`` and ``train/`` keys, in ``sb3/``, on SB3's timestep
axis (see ``nas_gym.agents.sb3``): no tag is written to two streams with different axes.

Speed: an instant evaluator (the table) finishes thousands of episodes a second, so an episode
costs here only a few protobuf values, buffered and written by :meth:`TensorBoardLog.flush` (at
each checkpoint and at the end) as one event per step. Tensorboard's writer checksums each
event in pure Python, so one event instead of eight is what counts: about 60 us per episode on
a shared 2-core machine, against about 300 us for eight ``add_scalar`` calls.
The Pareto figure (0.1-0.2 s of CPU) is redrawn at a checkpoint only when ``figure_seconds``
have passed since the last one, and always at the end.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tensorboard.compat.proto.summary_pb2 import Summary

from nas_gym.evaluators.base import EvalStats
from nas_gym.runs.runlog import Record

FIGURE_SECONDS = 60.0  # a figure costs about 0.1 s: at most once a minute keeps it under 0.2% of a run


class TensorBoardLog:
    """The event stream of one run folder.

    :param run_dir: where the event files go.
    :param hparams: the run's settings, written to the HParams tab at the end.
    :param purge_step: on resume, the first episode to be played again: TensorBoard hides what
        a killed run wrote from that step on.
    :param figure_seconds: least time between two Pareto figures drawn at checkpoints.
    :param stage_size: episodes per ``nas/reward_by_stage`` histogram.
    :param resume: the :meth:`state` saved at the checkpoint resumed from.
    """

    def __init__(self, run_dir: Path, hparams: dict[str, Any] | None = None, *, purge_step: int | None = None,
                 figure_seconds: float = FIGURE_SECONDS, stage_size: int = 25,
                 resume: dict[str, Any] | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.hparams = dict(hparams or {})
        self.figure_seconds = figure_seconds
        self.stage_size = stage_size
        self._writer = SummaryWriter(str(run_dir), purge_step=purge_step)
        self._pending: list[tuple[int, float, Any]] = []  # (step, wall time, Summary.Value)
        self._stage_rewards = [float(r) for r in (resume or {}).get("stage_rewards", [])]
        self._last_figure = time.monotonic()

    # -- per episode: buffered ------------------------------------------------------------
    def scalar(self, tag: str, value: float, step: int) -> None:
        self._pending.append((step, time.time(), Summary.Value(tag=tag, simple_value=float(value))))

    def evaluated(self, rec: Record, best: Record | None, new_best: bool, stats: EvalStats, step: int) -> None:
        """The curves of one evaluated episode, the best architecture's text when it changed,
        and the reward histogram of a stage that just filled up."""
        for tag, value in (("nas/val_acc", rec.val_acc), ("nas/reward", rec.reward), ("nas/params", rec.params),
                           ("nas/flops", rec.flops), ("nas/best_val_acc", best.val_acc if best else 0.0),
                           ("nas/best_reward", best.reward if best else 0.0),
                           ("nas/evaluations", stats.evaluations), ("nas/cache_hit_rate", stats.cache_hit_rate),
                           ("nas/failures", stats.failures)):
            self.scalar(tag, value, step)
        if new_best:
            from torch.utils.tensorboard.summary import text

            cost = "" if rec.cost is None else f", cost {rec.cost:g} ({'within' if rec.within_target else 'over'} target)"
            summary = text("nas/best_arch", f"`{rec.arch}`: reward {rec.reward:.4f}, val_acc {rec.val_acc:.4f}, "
                                            f"{rec.params:,} params{cost} (episode {rec.episode})")
            self._pending.append((step, time.time(), summary.value[0]))
        self._stage_rewards.append(rec.reward)
        if len(self._stage_rewards) >= self.stage_size:
            self._end_stage(step)

    def _end_stage(self, step: int) -> None:
        if self._stage_rewards:
            import numpy as np
            from torch.utils.tensorboard.summary import histogram

            summary = histogram("nas/reward_by_stage", np.asarray(self._stage_rewards), bins=self._writer.default_bins)
            self._pending.append((step, time.time(), summary.value[0]))
        self._stage_rewards = []

    # -- at checkpoints and at the end ------------------------------------------------------
    def flush(self, records: Sequence[Record], step: int, *, figure: bool = False) -> None:
        """Write what is buffered, one event per step; redraw the Pareto figure if ``figure``
        or if it is due."""
        file_writer = self._writer.file_writer
        i, pending = 0, self._pending
        while i < len(pending):
            j = i + 1
            while j < len(pending) and pending[j][0] == pending[i][0]:
                j += 1
            file_writer.add_summary(Summary(value=[v for _, _, v in pending[i:j]]), pending[i][0], pending[j - 1][1])
            i = j
        self._pending = []
        if figure or time.monotonic() - self._last_figure >= self.figure_seconds:
            self._pareto_figure(records, step)
        self._writer.flush()

    def state(self) -> dict[str, Any]:
        """The rewards of the stage in progress (JSON-ready), for a resumed run."""
        return {"stage_rewards": list(self._stage_rewards)}

    def _pareto_figure(self, records: Sequence[Record], step: int) -> None:
        from nas_gym.runs.figures import pareto_figure
        from nas_gym.runs.leaderboard import Entry, pareto_front

        self._last_figure = time.monotonic()
        ok = [r for r in records if r.status == "ok"]
        if not ok:
            return
        entries = [Entry(r.arch, r.val_acc, r.params, r.flops, 1, r.status, "", "") for r in ok]
        front = [(e.params, e.val_acc) for e in pareto_front(entries)]
        fig = pareto_figure([(r.params, r.val_acc) for r in ok], front, f"after {len(records)} evaluations")
        self._add_figure("nas/pareto_front", fig, step)

    def _add_figure(self, tag: str, fig: Any, step: int) -> None:
        """Draw ``fig`` on its Agg canvas and write it as an image (``SummaryWriter.add_figure``
        would import pyplot for the same pixels)."""
        import numpy as np

        fig.canvas.draw()
        self._writer.add_image(tag, np.asarray(fig.canvas.buffer_rgba())[..., :3], step, dataformats="HWC")

    def close(self, records: Sequence[Record], best: Record | None, step: int) -> None:
        """The last stage, the figures and the HParams entry, then close the event file."""
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        self._end_stage(step)
        self.flush(records, step, figure=True)
        if best is not None:
            from nas_gym.runs.figures import architecture_figure

            title = f"best: reward {best.reward:.4f}, val acc {best.val_acc:.4f}, {best.params:,} params"
            self._add_figure("nas/best_architecture", architecture_figure(best.arch, title), step)
        if self.hparams:
            clean = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in self.hparams.items()}
            metrics = {"hparam/best_val_acc": best.val_acc if best else 0.0, "hparam/best_reward": best.reward if best else 0.0,
                       "hparam/evaluations": float(len(records))}
            file_writer = self._writer.file_writer
            for summary in hparams_summary(clean, metrics):
                file_writer.add_summary(summary)
            for tag, value in metrics.items():
                self._writer.add_scalar(tag, value, step)
        self._writer.close()
