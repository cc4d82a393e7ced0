"""``nas-gym eval``: train one architecture and print its result."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from nas_gym.cli.common import (
    BAD_INPUT,
    ConfigOpt,
    SetOpt,
    bad_input,
    load_preset,
    out,
)
from nas_gym.runs.report import print_table


def eval_cmd(
    arch: Annotated[str, typer.Argument(help="Architecture text, e.g. 'conv3-32|maxpool|conv5-64'.")],
    config: ConfigOpt = "mnist1d",
    seed: Annotated[int | None, typer.Option(help="Training seed (default: the preset's train.seed).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    overrides: SetOpt = None,
) -> None:
    """Train one architecture and print its result."""
    try:
        from nas_gym.evaluators import make_evaluator

        cfg = load_preset(config, overrides, {"train.seed": seed} if seed is not None else None)
        parsed = cfg.search_space().validate(arch)
        evaluator = make_evaluator(cfg)
        result = evaluator.evaluate(parsed)
    except BAD_INPUT as e:
        raise bad_input(str(e)) from None
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    table = Table(title=f"{result.arch}  ({cfg.name}, seed {cfg.train.seed})", show_header=False)
    for key, value in result.to_dict().items():
        if key != "arch":
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    table.add_row("cache hit", "yes" if evaluator.stats.cache_hits else "no")
    print_table(out, table)
