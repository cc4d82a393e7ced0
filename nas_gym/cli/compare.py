"""``nas-gym compare``: several agents on one budget and the same seeds; a table, a CSV and a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nas_gym.cli.common import (
    BAD_INPUT,
    EVALUATOR_HELP,
    ConfigOpt,
    SetOpt,
    bad_input,
    console,
    load_preset,
    out,
)
from nas_gym.runs.report import print_table


def compare(
    agents: Annotated[str, typer.Option(help="Comma-separated agents, e.g. random,evolution,qlearning,maskable_ppo.")] = "random,evolution,qlearning",
    config: ConfigOpt = "mnist1d-tiny",
    budget: Annotated[int | None, typer.Option(help="Evaluations per run (cache hits count); default 100. With "
                                               "--budget-seconds: the evaluations agents plan their schedules for "
                                               "(default: the seconds over the table's mean seconds per architecture).")] = None,
    budget_seconds: Annotated[float | None, typer.Option(help="Stop every run once its simulated training seconds "
                                                         "(the evaluator's clock) pass this, as NATS-Bench compares.")] = None,
    seeds: Annotated[int, typer.Option(help="Seeds per agent (0..K-1).")] = 5,
    logdir: Annotated[Path, typer.Option(help="Folder for the runs, comparison.csv and comparison.png.")] = Path("runs/compare"),
    evaluator: Annotated[str | None, typer.Option(help=EVALUATOR_HELP, show_default="the preset's evaluator.kind")] = None,
    workers: Annotated[int, typer.Option(help="Runs in parallel (spawned processes, one torch thread each); "
                                         "the results do not depend on it.")] = 1,
    overrides: SetOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier comparison in --logdir (comparison.csv and "
                                            "its PNG); without it such a folder is refused.")] = False,
) -> None:
    """Run several agents on the same budget and seeds; per run: the architecture it returns, its test
    accuracy (table), regret, evaluations to the top 1%, simulated seconds; a CSV and a PNG."""
    from nas_gym.runs.anytime import plot_curves, time_grid, write_curves_csv
    from nas_gym.runs.compare import CSV_NAME, PNG_NAME, check_free, run_comparison
    from nas_gym.runs.compare_table import TESTS_CSV, agent_curves, holm_rows, plot, table_rows, write_holm_csv

    names = [a.strip() for a in agents.split(",") if a.strip()]
    try:
        if (budget is not None and budget < 1) or seeds < 1 or not names:
            raise ValueError(f"need --budget >= 1, --seeds >= 1 and at least one agent; got {budget}, {seeds}, {agents!r}")
        if budget_seconds is not None and not budget_seconds > 0:
            raise ValueError(f"--budget-seconds must be > 0, got {budget_seconds}")
        if workers < 1:
            raise ValueError(f"--workers must be >= 1, got {workers}")
        from nas_gym.agents.base import resolve_agent

        for name in names:
            resolve_agent(name)  # fail on a typo before any run starts
        check_free(logdir, overwrite)
        cfg = load_preset(config, overrides, {"evaluator.kind": evaluator} if evaluator else None)
        from nas_gym.preflight import preflight

        preflight(cfg, setup=True)  # a missing dataset, table or cache file fails before any folder exists
        progress = Progress(TextColumn("[bold]compare"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}", markup=False),
                            TimeElapsedColumn(), console=console)
        task = progress.add_task("", total=len(names) * seeds)

        def on_run(agent: str, seed: int) -> None:  # the bar appears with the first finished run, after every check
            if not progress.live.is_started:
                progress.start()
            progress.update(task, advance=1, description=f"{agent} seed {seed}")

        try:
            summaries, ref = run_comparison(
                cfg, names, budget, seeds, logdir, evaluator=evaluator, budget_seconds=budget_seconds, workers=workers,
                overwrite=overwrite, on_run=on_run)
        finally:
            if progress.live.is_started:
                progress.stop()
    except (*BAD_INPUT, ValueError) as e:
        raise bad_input(str(e)) from None
    planned = summaries[0].budget
    spent = f"{budget_seconds:g} simulated seconds (planned {planned} evaluations)" if budget_seconds else f"{planned} evaluations"
    png = plot(summaries, logdir / PNG_NAME, ref.optimum if ref else None, f"{cfg.name}: {seeds} seeds, {spent}")
    rows = table_rows(summaries)
    table = Table(title=f"{cfg.name}, budget {spent}, {seeds} seeds (mean ± std over seeds)")
    for col in rows[0]:  # agent names whole; the numbers wrap on a narrow terminal
        table.add_column(col, justify="left" if col == "agent" else "right", no_wrap=col == "agent")
    for row in rows:
        table.add_row(*row.values())
    print_table(out, table)
    if ref is None:
        out.print(f"Evaluator {cfg.evaluator.kind!r} has no table: test accuracy, regret and top-1% columns are empty.",
                  highlight=False, soft_wrap=True)
    else:
        tests = "" if ref.optimum_test is None else f", its test accuracy {ref.optimum_test:.4f}"
        out.print(f"Optimum of the space (mean val acc): {ref.optimum:.4f}{tests}; top 1% from {ref.threshold:.4f}. "
                  "Regret = optimum - mean val acc of the returned architecture.", highlight=False, soft_wrap=True)
    # Anytime curves over simulated time on one grid up to the budget (or the longest run's clock).
    horizon = budget_seconds or max((run.clock[-1] for s in summaries for run in s.runs if run.clock), default=0.0)
    extra = ""
    if horizon > 0:
        grid = time_grid(horizon)
        curves = agent_curves(summaries, cfg.search_space(), ref, grid)
        write_curves_csv(logdir / "anytime.csv", curves, grid)
        plot_curves(curves, grid, logdir / "anytime.png", f"{cfg.name}: median and quartiles over {seeds} seeds")
        extra = f"\nAnytime curves (median, quartiles over seeds): {logdir / 'anytime.csv'}, {logdir / 'anytime.png'}"
    if "random" in names and len(names) > 1:
        write_holm_csv(logdir / TESTS_CSV, holm_rows(summaries, "test_acc" if ref is not None and ref.test else "val_acc"))
        extra += f"\nAgainst random search (Mann-Whitney U, uncorrected and Holm-corrected): {logdir / TESTS_CSV}"
    out.print(f"Figure: {png}\nPer run: {logdir / CSV_NAME}{extra}", soft_wrap=True, highlight=False)
