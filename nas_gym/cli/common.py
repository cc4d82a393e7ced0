"""What every ``nas-gym`` command shares: the consoles, the common options and how bad input ends.

Bad input (a config key, an architecture string, an agent name, a dataset root) ends with one
line on stderr and exit code 2, before anything is trained or written to the cache.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from nas_gym.agents.base import BUILTIN_AGENTS
from nas_gym.config import Config, load_config, parse_overrides
from nas_gym.errors import NasGymError
from nas_gym.evaluator_kinds import help_text as evaluator_help

# No markup: messages carry user text (architectures, paths, preset names), and a "[/x]" in it
# must print as itself, not end a style or crash Rich. Styles are given as Text styles instead.
console = Console(stderr=True, markup=False)
out = Console(markup=False)

ConfigOpt = Annotated[str, typer.Option("--config", "-c", help="Preset name (see envs_config/) or YAML path.")]
AGENT_HELP = f"Agent: {', '.join(BUILTIN_AGENTS)}, or module:Class / file.py:Class."
EVALUATOR_HELP = evaluator_help()  # every kind of the registry, with what it is
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a config field: KEY=VALUE, e.g. train.epochs=4.")]
TrustOpt = Annotated[bool, typer.Option("--trust-run-folder", help="Use a run folder whose files are unsigned or changed "
                                        "since this user's nas-gym wrote them (another user's, another machine's, or an "
                                        "older nas-gym's). Its config and checkpoint may run code: only for authors you trust.")]


# What a command reports as one line and exit code 2: every error nas-gym raises on purpose, and
# the OS refusing a file. Anything else is a bug and keeps its traceback.
BAD_INPUT = (NasGymError, OSError)


def bad_input(message: str) -> typer.Exit:
    """One line on stderr, exit code 2; control characters (an ANSI escape in a path) are shown
    escaped, so user text can neither break the line nor drive the terminal."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in " ".join(str(message).splitlines()))
    console.print(Text.assemble(("error:", "bold red"), " ", shown), highlight=False, soft_wrap=True)
    return typer.Exit(2)


def load_preset(config: str, overrides: list[str] | None, extra: dict | None = None) -> Config:
    merged = parse_overrides(overrides or [])
    merged.update(extra or {})
    return load_config(config, merged)
