"""The nas-gym command: search end to end for every agent, its run folder, and bad input."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nas_gym.cli import app

runner = CliRunner()
AGENTS = ["random", "evolution", "qlearning", "reinforce", "ppo", "a2c", "dqn", "maskable_ppo"]


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def search(tmp_path, agent="random", episodes=6, *extra):
    return run("search", "--agent", agent, "--config", "mnist1d-tiny", "--episodes", str(episodes), "--seed", "0",
               "--logdir", str(tmp_path / "runs"), "--evaluator", "synthetic", *extra)


@pytest.mark.parametrize("agent", AGENTS)
def test_search_every_agent_through_cli(tmp_path, agent):
    result = search(tmp_path, agent, 6)
    assert result.exit_code == 0, result.output
    assert "Top" in result.output and "TensorBoard: tensorboard --logdir" in result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert {"config.yaml", "command.txt", "evaluations.csv"} <= {p.name for p in run_dir.iterdir()}
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir())
    rows = list(csv.DictReader((run_dir / "evaluations.csv").open()))
    assert 1 <= len(rows) <= 6 and all(0.0 <= float(r["val_acc"]) <= 1.0 for r in rows)


def test_tensorboard_scalars_are_written(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert search(tmp_path, "qlearning", 12).exit_code == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"nas/val_acc", "nas/best_val_acc", "nas/params", "nas/evaluations", "nas/cache_hit_rate",
            "nas/epsilon"} <= tags
    best = [e.value for e in acc.Scalars("nas/best_val_acc")]
    assert best == sorted(best) and len(best) >= 1
    assert [e.value for e in acc.Scalars("nas/evaluations")][-1] >= 1


def test_sb3_agent_keeps_sb3_keys(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert search(tmp_path, "ppo", 40, "--hparams", "{n_steps: 32, batch_size: 32}").exit_code == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    sb3_dirs = [p for p in (run_dir / "sb3").rglob("events.out.tfevents*")]
    assert sb3_dirs
    acc = EventAccumulator(str(sb3_dirs[0].parent))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert "rollout/ep_rew_mean" in tags and not any(t.startswith("nas/") for t in tags), "nas/* on one axis only"
    own = EventAccumulator(str(run_dir))
    own.Reload()
    steps = [e.step for e in own.Scalars("nas/best_val_acc")]  # the run's own stream, x = episodes
    assert steps == sorted(set(steps)) and 1 <= len(steps) <= steps[-1] <= 40


@pytest.mark.parametrize("args,needle", [
    (["search", "--agent", "nope"], "unknown agent 'nope'"),
    (["search", "--config", "nope"], "unknown preset 'nope'"),
    (["search", "--set", "train.epochz=2"], "train.epochz: unknown key"),
    (["search", "--episodes", "-3"], "--episodes must be >= 1"),
    (["search", "--agent", "qlearning", "--hparams", "{bogus: 1}"], "unknown hyperparameter"),
    (["eval", "conv3-16|maxpol"], "cannot parse op 'maxpol'"),
    (["eval", "maxpool|maxpool"], "not in the search space"),
], ids=lambda a: " ".join(a)[:40] if isinstance(a, list) else None)
def test_bad_input_exit_code_2(tmp_path, args, needle):
    full = args + (["--logdir", str(tmp_path / "runs"), "--evaluator", "synthetic", "--episodes", "2"]
                   if args[0] == "search" and "--episodes" not in args else
                   ["--logdir", str(tmp_path / "runs"), "--evaluator", "synthetic"] if args[0] == "search" else [])
    if args[0] == "eval":
        full += ["--config", "mnist1d-tiny"]
    result = runner.invoke(app, full)
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert "Traceback" not in result.output
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "bad input left a run folder behind"


def test_unwritable_logdir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = runner.invoke(app, ["search", "--logdir", str(blocker / "runs"), "--config", "mnist1d-tiny",
                                 "--evaluator", "synthetic", "--episodes", "2"])
    assert result.exit_code == 2 and "logdir" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_eval_real_training_is_reproducible(tmp_path):
    args = ["eval", "conv3-16|maxpool|conv5-16", "--config", "mnist1d-tiny", "--json", "--seed", "1",
            "--set", "evaluator.cache=null", "--set", f"data.root={tmp_path}"]
    first, second = run(*args), run(*args)
    assert first.exit_code == 0, first.output
    a, b = json.loads(first.output), json.loads(second.output)
    assert a["val_acc"] == b["val_acc"] and a["status"] == "ok" and a["val_acc"] > 0.2


def test_readme_custom_agent_runs_from_a_file_path(tmp_path):
    """The README's 30-line agent loads by path:Class and finds the synthetic optimum."""
    from pathlib import Path

    from nas_gym.evaluators.synthetic import SyntheticEvaluator

    example = Path(__file__).resolve().parent.parent / "examples" / "local_search.py"
    result = search(tmp_path, f"{example}:LocalSearch", 200)
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("LocalSearch-mnist1d-tiny-synthetic-s0-")
    best_arch, _ = SyntheticEvaluator(__import__("nas_gym").load_config("mnist1d-tiny").search_space()).optimum()
    rows = list(csv.DictReader((run_dir / "evaluations.csv").open()))
    assert best_arch.text() in {r["arch"] for r in rows}


@pytest.mark.parametrize("kind", ["table", "proxy:synflow", "proxy:jacob_cov"])
def test_search_with_instant_evaluators_through_cli(tmp_path, kind):
    """The table and the zero-cost proxies drive a search from the command line; the same seed
    gives the same architectures and rewards twice (a proxy scores from a seeded minibatch)."""
    def rows(logdir):
        result = run("search", "--agent", "evolution", "--config", "mnist1d-tiny", "--episodes", "12", "--seed", "3",
                     "--logdir", str(logdir), "--evaluator", kind)
        assert result.exit_code == 0, result.output
        (run_dir,) = logdir.iterdir()
        return [(r["arch"], r["reward"]) for r in csv.DictReader((run_dir / "evaluations.csv").open())]

    first = rows(tmp_path / "a")
    assert len(first) == 12 and all(np.isfinite(float(r)) for _, r in first)
    assert rows(tmp_path / "b") == first
