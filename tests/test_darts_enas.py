"""DARTS and ENAS on tiny budgets (a tenth of the training split), and the three new agents and
the supernet evaluator through ``nas-gym search``, resumes included."""

from __future__ import annotations

import csv
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from typer.testing import CliRunner

import nas_gym.agents.enas
from nas_gym.agents.darts import Darts
from nas_gym.agents.enas import Enas
from nas_gym.cli import app
from nas_gym.config import load_config
from nas_gym.evaluators.synthetic import SyntheticEvaluator
from nas_gym.runs.search import SearchInterrupted, run_search
from nas_gym.spaces.cell.space import CELL_OPS

TINY = {"data.train_fraction": 0.1, "runtime.device": "cpu"}  # the GPU run: tests/test_gpu_smoke.py


def make_env(preset: str = "mnist1d-cell", overrides: dict | None = None) -> gym.Env:
    cfg = load_config(preset, {**TINY, **(overrides or {})})
    return gym.make("NasGym/LayerChain-v0", config=cfg, evaluator=SyntheticEvaluator(cfg.search_space()))


@pytest.mark.slow
def test_darts_plays_its_derived_cell_each_episode_and_draws_alpha(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    env = make_env()
    agent = Darts(env, seed=0, logdir=tmp_path)
    start = agent.probabilities()
    agent.learn(2)
    stats = env.unwrapped.evaluator.stats
    assert stats.evaluations == 2 and stats.train_seconds > 0  # its own epochs are charged too
    assert env.unwrapped.space.violation(agent.derived()) is None
    assert not torch.allclose(torch.tensor(agent.probabilities()), torch.tensor(start))
    acc = EventAccumulator(str(tmp_path / "darts"))
    acc.Reload()
    assert [e.step for e in acc.Images("darts/alpha")] == [1, 2]
    assert {"darts/train_loss", "darts/val_loss"} <= set(acc.Tags()["scalars"])


@pytest.mark.slow
@pytest.mark.parametrize(("preset", "overrides"), [("mnist1d-tiny", {}), ("digits", {"space.max_depth": 3})],
                         ids=["chain-1d", "chain-2d"])
def test_second_order_darts_derives_valid_chains(preset, overrides):
    env = make_env(preset, overrides)
    agent = Darts(env, seed=1, hparams={"second_order": True})
    agent.learn(1)
    assert env.unwrapped.space.violation(agent.derived()) is None


@pytest.mark.slow
def test_darts_checkpoint_continues_the_same_search(tmp_path):
    straight = Darts(make_env(), seed=2)
    straight.learn(2)
    first = Darts(make_env(), seed=2)
    first.learn(1)
    first.save(tmp_path / "darts.pt")
    resumed = Darts(make_env(), seed=2)
    resumed.load(tmp_path / "darts.pt")
    resumed.learn(1)
    torch.testing.assert_close(resumed.alpha, straight.alpha)


def test_enas_controller_follows_its_rewards(monkeypatch):
    """With the supernet's reward replaced by the share of conv3 edges, the controller's
    preferred cell becomes mostly conv3: the policy-gradient loop works."""
    conv3 = CELL_OPS.index("conv3")
    monkeypatch.setattr(nas_gym.agents.enas, "score_path", lambda net, arch, *batches: arch.ops.count(conv3) / 6)
    env = make_env()
    agent = Enas(env, seed=0, hparams={"shared_steps": 1, "controller_steps": 60, "learning_rate": 0.01})
    agent.learn(4)
    assert env.unwrapped.evaluator.stats.evaluations == 4
    assert agent.preferred().ops.count(conv3) >= 5


def test_enas_checkpoint_continues_the_same_search(tmp_path):
    hparams = {"shared_steps": 2, "controller_steps": 5}
    straight = Enas(make_env(), seed=1, hparams=hparams)
    straight.learn(2)
    first = Enas(make_env(), seed=1, hparams=hparams)
    first.learn(1)
    first.save(tmp_path / "enas.pt")
    resumed = Enas(make_env(), seed=1, hparams=hparams)
    resumed.load(tmp_path / "enas.pt")
    resumed.learn(1)
    assert resumed.preferred() == straight.preferred() and resumed.baseline == straight.baseline
    for a, b in zip(resumed.setup.net.parameters(), straight.setup.net.parameters(), strict=True):
        torch.testing.assert_close(a, b)


# -- through the command line ----------------------------------------------------------------------
def rows(run_dir: Path) -> list[tuple[str, str]]:
    with (run_dir / "evaluations.csv").open(newline="") as f:
        return [(r["arch"], r["val_acc"]) for r in csv.DictReader(f)]


@pytest.mark.slow
@pytest.mark.parametrize(("agent", "preset", "evaluator"), [
    ("greedy", "mnist1d-tiny", "table"), ("darts", "mnist1d-cell", "synthetic"), ("enas", "digits", "synthetic"),
    ("random", "mnist1d-tiny", "supernet")], ids=["greedy-table", "darts-cell", "enas-digits", "random-supernet"])
def test_search_command_runs_the_new_agents_and_evaluator(tmp_path, agent, preset, evaluator):
    small = [] if evaluator == "table" else ["--set", "data.train_fraction=0.1"]  # the table fixes its data
    result = CliRunner().invoke(app, [
        "search", "--agent", agent, "--config", preset, "--episodes", "3", "--seed", "0", "--evaluator", evaluator,
        "--logdir", str(tmp_path / "runs"), *small, "--set", "evaluator.supernet_epochs=1",
        "--set", f"evaluator.cache={tmp_path / 'cache.sqlite'}"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert len(rows(run_dir)) == 3


@pytest.mark.slow
@pytest.mark.parametrize(("agent", "evaluator"), [("darts", "synthetic"), ("enas", "synthetic"),
                                                  ("greedy", "supernet")])
def test_a_stopped_search_resumes_to_the_same_run(tmp_path, agent, evaluator):
    cfg = load_config("mnist1d-cell", {**TINY, "evaluator.kind": evaluator, "evaluator.supernet_epochs": 1,
                                       "evaluator.cache": str(tmp_path / "cache.sqlite")})
    hparams = {"shared_steps": 2, "controller_steps": 3} if agent == "enas" else None

    def search(logdir: Path, stop_at: int | None = None) -> Path:
        def stop(log) -> None:
            if log.episodes == stop_at:
                raise KeyboardInterrupt

        try:
            return run_search(cfg, agent, 5, 0, logdir, hparams=hparams, on_episode=stop, checkpoint_every=2).run_dir
        except SearchInterrupted as e:
            return e.run_dir

    straight = search(tmp_path / "a")
    stopped = search(tmp_path / "b", stop_at=3)
    resumed = run_search(cfg, agent, 5, 0, tmp_path / "b", hparams=hparams, resume=stopped).run_dir
    assert rows(resumed) == rows(straight) and len(rows(straight)) == 5


def test_one_shot_training_is_charged_in_cpu_seconds(monkeypatch):
    """The supernet's training is charged the process's CPU time, the tables' kind of seconds,
    not the wall clock (which would bill other jobs' load): a block that took 5 CPU-seconds and
    100 wall seconds is charged 5."""
    from nas_gym.agents.context import AgentContext
    from nas_gym.oneshot import agents as one_shot

    clock = {"cpu": 10.0, "wall": 1000.0}
    monkeypatch.setattr(one_shot.time, "process_time", lambda: clock["cpu"])
    monkeypatch.setattr(one_shot.time, "perf_counter", lambda: clock["wall"])
    env = make_env()
    setup = one_shot.OneShotSetup(env.unwrapped.config, torch.device("cpu"), None, env.unwrapped.space, None)
    before = env.unwrapped.evaluator.stats.train_seconds
    with one_shot.charged(AgentContext.of(env).charge_seconds, setup, seed=0):
        clock["cpu"] += 5.0
        clock["wall"] += 100.0
    assert env.unwrapped.evaluator.stats.train_seconds - before == pytest.approx(5.0)
