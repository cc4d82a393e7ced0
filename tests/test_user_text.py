"""User text is printed as text (issue 24, defect 4): a ``[/x]`` in an architecture, a path or a
preset name must not be read as Rich markup (which crashed with a ``MarkupError`` traceback, exit
code 1), and an ANSI escape in it must not reach the terminal. Each command's error path gets
the same hostile text; the outcome is one line, exit code 2, the text shown as itself.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from nas_gym.cli import app

runner = CliRunner()
HOSTILE = "a[b]c[/x]\x1b[31mred"
SHOWN = "a[b]c[/x]\\x1b[31mred"  # the escape character printed as \x1b, the brackets as they are

CASES = {
    "eval-arch": ["eval", f"conv3-16|{HOSTILE}", "--config", "mnist1d-tiny"],
    "search-config": ["search", "--config", f"/nonexistent/{HOSTILE}.yaml"],
    "search-resume": ["search", "--resume", f"/nonexistent/{HOSTILE}"],
    "search-name": ["search", "--config", "mnist1d-tiny", "--set", f"name={HOSTILE}"],
    "search-agent": ["search", "--config", "mnist1d-tiny", "--agent", HOSTILE, "--evaluator", "synthetic"],
    "compare-agents": ["compare", "--agents", f"random,{HOSTILE}", "--evaluator", "synthetic"],
    "leaderboard": ["leaderboard", f"/nonexistent/{HOSTILE}"],
    "retrain-folder": ["retrain", f"/nonexistent/{HOSTILE}"],
    "retrain-arch": ["retrain", f"conv3-16|{HOSTILE}", "--config", "mnist1d-tiny"],
    "latency-config": ["latency", "profile", "--config", f"/nonexistent/{HOSTILE}.yaml"],
}


@pytest.mark.parametrize("args", list(CASES.values()), ids=list(CASES))
def test_hostile_text_is_printed_as_text(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)  # nothing may be written; if it were, it lands here
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "\x1b" not in result.output
    assert "[/x]" in lines[0] and ("a[b]c" in lines[0] or SHOWN in lines[0]), lines[0]
