"""``nas-gym latency profile``: the per-layer latency table of this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nas_gym.cli.common import (
    BAD_INPUT,
    ConfigOpt,
    SetOpt,
    bad_input,
    console,
    load_preset,
    out,
)


def latency_profile(
    config: ConfigOpt = "mnist1d",
    out_file: Annotated[Path | None, typer.Option("--out", help="Table file (default: the preset's reward.latency_table, "
                                                  "or ~/.cache/nas-gym/latency/<preset hash>.json).")] = None,
    repeats: Annotated[int, typer.Option(help="Timed runs of each layer and fitted network; the median is kept.")] = 100,
    fit_archs: Annotated[int, typer.Option(help="Whole networks the constant (intercept and scale) is fitted on.")] = 30,
    overrides: SetOpt = None,
) -> None:
    """Time every layer the preset's space can produce here (batch 1, one thread): the table latency_model sums."""
    try:
        from nas_gym.latency.model import default_table_path, preset_identity
        from nas_gym.latency.profile import profile

        if repeats < 1 or fit_archs < 1:
            raise ValueError(f"need --repeats >= 1 and --fit-archs >= 1, got {repeats} and {fit_archs}")
        # This builds the table a latency_model cost reads, so the preset's own cost is not checked here.
        cfg = load_preset(config, overrides, {"reward.cost": "params"})
        path = out_file or (Path(cfg.reward.latency_table) if cfg.reward.latency_table != "auto" else
                            default_table_path(preset_identity(cfg.space, cfg.input_shape, cfg.num_classes)))
        progress = Progress(TextColumn("[bold]latency profile"), BarColumn(), MofNCompleteColumn(), TextColumn("rounds"),
                            TimeElapsedColumn(), console=console)
        task = progress.add_task("", total=None)

        def on_step(done: int, total: int) -> None:  # the bar appears once timing starts, after every check
            if not progress.live.is_started:
                progress.start()
            progress.update(task, completed=done, total=total)

        try:
            table = profile(cfg, repeats=repeats, fit_archs=fit_archs, on_step=on_step)
        finally:
            if progress.live.is_started:
                progress.stop()
        table.save(path)
    except (*BAD_INPUT, ValueError) as e:
        raise bad_input(str(e)) from None
    fit_error = sorted(abs(r) / m for r, m in zip(table.fit["residual_ms"], table.fit["measured_ms"], strict=True))
    out.print(f"{len(table.entries)} layers of {cfg.name} timed on {table.cpu} ({table.device}, torch {table.torch}, "
              f"{table.threads} thread) in {table.profile_seconds:.1f} s; fitted on {len(fit_error)} networks: "
              f"{table.scale:.3f} x sum + {table.intercept_ms * 1e3:.1f} us, median error "
              f"{100 * fit_error[len(fit_error) // 2]:.1f}%", highlight=False, soft_wrap=True)
    out.print(f"Table: {path}\nUse it with: --set reward.cost=latency_model"
              + ("" if out_file is None else f" --set reward.latency_table={path}"), highlight=False, soft_wrap=True)
