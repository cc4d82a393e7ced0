"""`nas-gym search --resume RUN_DIR`, the command a user types first: the run folder supplies
the agent, config, seed, episodes, hyperparameters and evaluator; an option given must agree
with the run, except a larger ``--episodes``, which extends it.

Searches run on the instant synthetic evaluator with a few episodes each.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nas_gym.cli import app
from nas_gym.config import load_config
from nas_gym.runs.checkpoint import read_manifest
from nas_gym.runs.search import SearchInterrupted, run_search

runner = CliRunner()
# Nothing here is a default of the command, so a resume that fell back on a default would show.
SETTINGS = {"agent": "evolution", "seed": 3, "episodes": 14, "hparams": {"population": 4, "sample": 2}}
OVERRIDES = {"evaluator.kind": "synthetic", "reward.failure_reward": -0.5}


def archs(run_dir: Path) -> list[str]:
    with (run_dir / "evaluations.csv").open(newline="") as f:
        return [r["arch"] for r in csv.DictReader(f)]


def search(logdir: Path, episodes: int, stop_at: int | None = None) -> Path:
    """A search with ``SETTINGS`` (but ``episodes``), stopped by Ctrl-C at ``stop_at`` if given."""
    cfg = load_config("mnist1d-tiny", OVERRIDES)

    def stop(log) -> None:
        if log.episodes == stop_at:
            raise KeyboardInterrupt

    settings = {**SETTINGS, "episodes": episodes}
    try:
        return run_search(cfg, logdir=logdir, on_episode=stop, checkpoint_every=5, argv=["nas-gym", "search"],
                          **settings).run_dir
    except SearchInterrupted as e:
        assert stop_at is not None
        return e.run_dir


@pytest.fixture(autouse=True)
def elsewhere(tmp_path, monkeypatch):
    """Run from an empty folder: a resume must not need (or write) anything in the working folder."""
    monkeypatch.chdir(tmp_path)


def test_resume_alone_continues_the_run_with_its_own_settings(tmp_path):
    run_dir = search(tmp_path / "runs", 14, stop_at=12)
    assert read_manifest(run_dir).episodes_done == 10
    result = runner.invoke(app, ["search", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "Resumed after episode 10." in result.output and "14 episodes" in result.output
    straight = search(tmp_path / "straight", 14)
    assert archs(run_dir) == archs(straight) and len(archs(run_dir)) == 14
    assert read_manifest(run_dir).episodes_done == 14
    assert {p.name for p in tmp_path.iterdir()} == {"runs", "straight"}  # nothing in the working folder


def test_resume_alone_of_a_finished_run_says_so_without_a_progress_bar(tmp_path):
    run_dir = search(tmp_path / "runs", 14)
    result = runner.invoke(app, ["search", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Run {run_dir} already finished its 14 episodes; nothing to resume")


def test_more_episodes_extend_a_finished_run(tmp_path):
    run_dir = search(tmp_path / "runs", 10)
    result = runner.invoke(app, ["search", "--resume", str(run_dir), "--episodes", "14"])
    assert result.exit_code == 0, result.output
    assert "Resumed after episode 10." in result.output
    assert archs(run_dir) == archs(search(tmp_path / "straight", 14))
    assert (read_manifest(run_dir).episodes, read_manifest(run_dir).episodes_done) == (14, 14)
    again = runner.invoke(app, ["search", "--resume", str(run_dir)])  # the extension is the run's new length
    assert again.exit_code == 0 and "already finished its 14 episodes" in again.output


@pytest.mark.parametrize("option, needle", [
    (["--seed", "0"], "the run used --seed 3, this command has --seed 0"),
    (["--agent", "random"], "the run used --agent evolution"),
    (["--episodes", "9"], "the run used --episodes 14, this command has --episodes 9"),
    (["--hparams", "{population: 5, sample: 2}"], "the run used --hparams"),
    (["--evaluator", "table"], "config differs from the run's at evaluator.kind (run: synthetic, now: table)"),
    (["--config", "mnist1d", "--evaluator", "synthetic"], "the run used --config mnist1d-tiny"),
], ids=["seed", "agent", "fewer-episodes", "hparams", "evaluator", "config"])
def test_an_option_that_contradicts_the_run_exits_2_before_any_output(tmp_path, option, needle):
    run_dir = search(tmp_path / "runs", 14, stop_at=7)
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    result = runner.invoke(app, ["search", "--resume", str(run_dir), *option])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:") and needle in " ".join(result.output.split())
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before
