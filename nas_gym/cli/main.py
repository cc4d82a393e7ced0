"""The ``nas-gym`` application: every command, registered in the order ``--help`` lists them.

The console script (pyproject.toml) and ``python -m nas_gym.cli`` run :data:`app`.
"""

from __future__ import annotations

import typer

from nas_gym.cli.compare import compare
from nas_gym.cli.evaluate import eval_cmd
from nas_gym.cli.latency import latency_profile
from nas_gym.cli.leaderboard import leaderboard
from nas_gym.cli.retrain import retrain_cmd
from nas_gym.cli.search import search

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Neural architecture search as a Gymnasium environment.")
app.command("eval")(eval_cmd)
app.command()(search)
app.command()(compare)
app.command()(leaderboard)
app.command("retrain")(retrain_cmd)

latency_app = typer.Typer(no_args_is_help=True, help="A latency model of this machine (reward.cost: latency_model).")
latency_app.command("profile")(latency_profile)
app.add_typer(latency_app, name="latency")
