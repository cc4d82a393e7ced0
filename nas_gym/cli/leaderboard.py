"""``nas-gym leaderboard``: the best architectures of one or several runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nas_gym.cli.common import (
    bad_input,
    out,
)
from nas_gym.runs.report import print_table


def leaderboard(
    runs: Annotated[list[Path], typer.Argument(help="Run folders, or folders holding run folders.")],
    top: Annotated[int, typer.Option(help="How many architectures to show.")] = 10,
    pareto: Annotated[bool, typer.Option(help="Show only the accuracy / parameters Pareto front.")] = False,
    preset: Annotated[str | None, typer.Option(help="Only runs of this preset (config.yaml's name).", show_default="all")] = None,
    evaluator: Annotated[str | None, typer.Option(help="Only runs scored by this evaluator kind (table, train, ...).",
                                                  show_default="all")] = None,
) -> None:
    """The best architectures of one or several runs, by the reward they optimised; failures listed apart."""
    from nas_gym.runs.leaderboard import LeaderboardError, RunInfo, pareto_front, read_entries, select_runs
    from nas_gym.runs.report import leaderboard_table

    try:
        if top < 1:
            raise ValueError(f"--top must be >= 1, got {top}")
        entries, failures = read_entries(runs, preset, evaluator)
        kinds = {(i.preset, i.evaluator, i.reward) for i in (RunInfo.of(p.parent) for p in select_runs(runs, preset, evaluator))}
    except (LeaderboardError, ValueError, OSError) as e:
        raise bad_input(str(e)) from None
    shown = pareto_front(entries) if pareto else entries[:top]
    print_table(out, leaderboard_table(shown, entries, pareto))
    if len(kinds) > 1:
        out.print(f"Note: these runs differ in preset, evaluator or reward ({'; '.join('/'.join(k) for k in sorted(kinds))}), "
                  "so their scores are not on one scale; narrow with --preset and --evaluator.", highlight=False, soft_wrap=True)
    if failures:
        fail = Table(title=f"{len(failures)} failed architectures")
        for col in ("architecture", "reason", "evaluations"):
            fail.add_column(col, overflow="fold")
        for e in failures:
            fail.add_row(e.arch, e.reason, str(e.evaluations))
        print_table(out, fail)
