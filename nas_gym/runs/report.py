"""What the command line prints about a search: progress, the top architectures, the leaderboard.

Two readers. On a terminal, a live progress bar and tables that fit the window. Piped into a
file or another program (``nas-gym search ... | tee log``), a live bar shows nothing until the
end and a table folded to 80 columns cuts architecture names mid-token; so there the progress is
a plain line every ``PLAIN_EVERY_SECONDS`` and tables print at their natural width, one row per line.

What ranks is the reward the search optimised; with a cost-aware reward (``mnas``,
``constraint``) the tables show it beside the validation accuracy, with the cost the reward
used and whether it is within the target, so a winner that breaks the constraint cannot pass
for one that meets it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nas_gym.runs.runlog import Record

PLAIN_EVERY_SECONDS = 30.0  # piped output: one progress line this often (and one at the end)


def print_table(console: Console, table: Table) -> None:
    """On a terminal, fitted to the window; otherwise at the width the table needs, so no cell
    wraps and every row stays one line for grep and diff."""
    if console.is_terminal:
        console.print(table)
        return
    needed = console.measure(table, options=console.options.update(width=10_000)).maximum
    saved = console.width
    console.width = max(needed, saved)  # print() clamps its width to the console's, so widen that
    try:
        console.print(table, crop=False)
    finally:
        console.width = saved


def cost_text(cost: float | None, within: bool | None) -> str:
    """``1,850 (ok)`` / ``4,442 (over)``; ``-`` when the reward used no cost."""
    if cost is None:
        return "-"
    number = f"{cost:,.0f}" if cost >= 100 else f"{cost:.4g}"
    return number + ("" if within is None else " (ok)" if within else " (over)")


def best_text(best: Record | None) -> str:
    """The progress line's best: validation accuracy, or, when the reward is cost-aware, the
    reward with its accuracy and cost."""
    if best is None:
        return "best -"
    if best.cost is None:
        return f"best val {best.val_acc:.4f}"
    return f"best reward {best.reward:.4f} (val {best.val_acc:.4f}, cost {cost_text(best.cost, best.within_target)})"


def search_progress(console: Console, episodes: int) -> tuple[Callable[[Any], None], Callable[[], None]]:
    """(update, stop) for a search's ``on_episode`` hook. The bar (or the first plain line)
    appears with the first finished episode: a search refused for bad input prints its one
    line with nothing above it."""
    start: list[float] = []
    last_line = [0.0]
    state: dict[str, Any] = {}

    def plain(recorder: Any, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - last_line[0] < PLAIN_EVERY_SECONDS and recorder.episodes < episodes:
            return
        last_line[0] = now
        stats = recorder.evaluator.stats
        elapsed = now - start[0]
        console.print(f"search {recorder.episodes}/{episodes} episodes, {best_text(recorder.best)}, "
                      f"{60 * stats.evaluations / max(elapsed, 1e-9):.0f} eval/min, cache hits {stats.cache_hits}, "
                      f"{elapsed:.0f} s", highlight=False, soft_wrap=True)

    progress = Progress(TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(), TextColumn("episodes"),
                        TextColumn("{task.fields[best]}"), TextColumn("{task.fields[rate]} eval/min"),
                        TextColumn("cache hits {task.fields[hits]}"), TimeElapsedColumn(), console=console)
    task = progress.add_task("search", total=episodes, best="best -", rate="-", hits=0, start=False)

    def update(recorder: Any) -> None:
        state["recorder"] = recorder
        if not start:
            start.append(time.monotonic())
            last_line[0] = start[0]
            if console.is_terminal:
                progress.start()
                progress.start_task(task)
        if not console.is_terminal:
            plain(recorder)
            return
        stats = recorder.evaluator.stats
        elapsed = progress.tasks[task].elapsed or 1e-9
        progress.update(task, completed=recorder.episodes, best=best_text(recorder.best),
                        rate=f"{60 * stats.evaluations / elapsed:.0f}", hits=stats.cache_hits)

    def stop() -> None:
        if progress.live.is_started:
            progress.stop()
        elif start and last_line[0] > start[0] and "recorder" in state and state["recorder"].episodes < episodes:
            plain(state["recorder"], force=True)  # an interrupted piped run: where it stopped

    return update, stop


def _cost_aware(records: Sequence[Any]) -> bool:
    return any(r.cost is not None for r in records)


def top_table(records: Sequence[Record], cost_name: str) -> Table:
    """The search's top architectures by reward; reward and cost columns when the reward is cost-aware."""
    aware = _cost_aware(records)
    fidelity = any(r.epochs is not None for r in records)  # a multi-fidelity search: the epochs behind each score
    table = Table(title=f"Top {len(records)} architectures" + (" by reward" if aware else "")
                  + (" (highest epochs first)" if fidelity else ""))
    cols = ("#", "architecture", "val acc") + (("reward", cost_name) if aware else ()) + ("params", "FLOPs", "episode") + (
        ("epochs",) if fidelity else ())
    for col in cols:
        table.add_column(col, justify="left" if col == "architecture" else "right",
                         overflow="fold" if col == "architecture" else "ellipsis")
    for i, rec in enumerate(records, 1):
        extra = (f"{rec.reward:.4f}", cost_text(rec.cost, rec.within_target)) if aware else ()
        table.add_row(str(i), rec.arch, f"{rec.val_acc:.4f}", *extra, f"{rec.params:,}", f"{rec.flops:,}", str(rec.episode),
                      *([str(rec.epochs or "")] if fidelity else []))
    return table


def leaderboard_table(shown: Sequence[Any], entries: Sequence[Any], pareto: bool) -> Table:
    """Leaderboard entries (``nas_gym.runs.leaderboard.Entry``) ``shown`` of all ``entries``, best reward first."""
    aware = _cost_aware(entries)
    title = "Pareto front (val acc vs params)" if pareto else f"Top {len(shown)} of {len(entries)} architectures"
    table = Table(title=title + (" by reward" if aware and not pareto else ""))
    several_runs = len({e.run for e in entries}) > 1
    confirmed = any(e.fidelity for e in entries)  # a multi-fidelity search: show which were re-trained longer
    at_epochs = any(e.epochs is not None for e in entries)  # a multi-fidelity agent: the epochs behind each score
    cols = ("#", "architecture", "val acc") + (("reward", "cost") if aware else ()) + ("params", "FLOPs", "evals") + (
        ("fidelity",) if confirmed else ()) + (("epochs",) if at_epochs else ()) + (("run",) if several_runs else ())
    for col in cols:
        table.add_column(col, justify="left" if col in ("architecture", "run") else "right",
                         overflow="fold" if col == "architecture" else "ellipsis",
                         min_width=24 if col == "architecture" else None)
    for i, e in enumerate(shown, 1):
        extra = (f"{e.reward:.4f}", cost_text(e.cost, e.within_target)) if aware else ()
        table.add_row(str(i), e.arch, f"{e.val_acc:.4f}", *extra, f"{e.params:,}", f"{e.flops:,}", str(e.evaluations),
                      *([e.fidelity or "low"] if confirmed else []), *([str(e.epochs or "")] if at_epochs else []),
                      *([e.run] if several_runs else []))
    return table
