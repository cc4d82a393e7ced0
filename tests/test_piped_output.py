"""Output that stays readable when piped (not a terminal): tables at their natural width, so an
architecture name is never cut mid-token, a plain progress line instead of a live bar, and
``--help`` that shows every default."""

from __future__ import annotations

import csv

import pytest
from typer.testing import CliRunner

from nas_gym.cli import app
from nas_gym.runs import report
from nas_gym.runs.runlog import record_of, top

runner = CliRunner()  # its stdout and stderr are not terminals, as in `nas-gym ... | tee log`


def test_piped_search_prints_whole_names_and_plain_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")  # a narrow pipe: a fitted table would fold the names
    monkeypatch.setattr(report, "PLAIN_EVERY_SECONDS", 0.0)  # a line per episode, so the test sees several
    result = runner.invoke(app, ["search", "--agent", "random", "--config", "mnist1d", "--evaluator", "synthetic",
                                 "--episodes", "12", "--logdir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run_dir,) = tmp_path.iterdir()
    rows = [record_of(r) for r in csv.DictReader((run_dir / "evaluations.csv").open())]
    lines = result.output.splitlines()
    for rec in top(rows, 5):
        assert any(rec.arch in line for line in lines), f"{rec.arch} is cut in:\n{result.output}"
    progress = [line for line in lines if line.startswith("search ") and "episodes" in line]
    assert len(progress) >= 2 and progress[-1].startswith("search 12/12 episodes, best val ")


@pytest.mark.parametrize(("command", "default"), [
    ("search", "[default: (qlearning"), ("search", "[default: (mnist1d"), ("search", "[default: (100"),
    ("leaderboard", "[default: 10]"), ("compare", "[default: 5]"), ("retrain", "[default: 3]"),
])
def test_help_shows_defaults(command, default):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0 and default in result.output
