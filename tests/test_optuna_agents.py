"""Optuna's samplers as agents (tpe, gp, nsga2): they run on the layer chain, the cell and a
user's space (the two shipped tables, the example MLP space with synthetic scores), each episode
a new valid architecture; the same seed gives the same run; ask/tell works asynchronously; the
encoding's repair is deterministic and every architecture is reachable without it; a checkpoint
resumes exactly; NSGA-II's front is non-dominated and its hypervolume is the hand-computed one;
a missing optuna is one line naming the extra."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import gymnasium as gym
import pytest
from typer.testing import CliRunner

from nas_gym.agents.base import AgentError, resolve_agent
from nas_gym.agents.optuna_agents import GP, TPE
from nas_gym.agents.optuna_nsga2 import NSGA2, hypervolume, pareto_front
from nas_gym.agents.optuna_proposals import PositionEncoding
from nas_gym.cli import app
from nas_gym.config import load_config
from nas_gym.envs.nas_env import NasEnv
from nas_gym.evaluators.synthetic import SyntheticEvaluator
from nas_gym.spaces.cell.space import Cell

pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "examples" / "mlp_space.yaml")
AGENTS = {"tpe": TPE, "gp": GP, "nsga2": NSGA2}
# GP refits and optimises its acquisition per proposal (tenths of a second): fewer episodes, just
# past its 10 random ones; the others run well past their random start.
EPISODES = {"tpe": 25, "gp": 13, "nsga2": 30}


class Spy(gym.Wrapper):
    """Records (arch, reward) of every finished episode and the scalars an agent logs."""

    def __init__(self, env):
        super().__init__(env)
        self.seen: list[tuple[str, float]] = []
        self.scalars: dict[str, float] = {}

    def record_scalar(self, tag, value, step=None):
        self.scalars[tag] = value

    def step(self, action):
        out = self.env.step(action)
        if out[2] or out[3]:
            self.seen.append((out[4]["arch"], float(out[1])))
        return out


def make_env(space: str) -> Spy:
    """The shipped table of ``mnist1d-tiny`` / ``mnist1d-cell``; synthetic scores for the MLP."""
    if space == "mlp":
        cfg = load_config(MLP)
        return Spy(NasEnv(cfg, evaluator=SyntheticEvaluator(cfg.search_space(), seed=0)))
    return Spy(NasEnv(space, evaluator="table", seed=0))


@pytest.fixture(autouse=True)
def _from_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the MLP preset names its space by a path relative to the checkout


@pytest.mark.parametrize("space", ["mnist1d-tiny", "mnist1d-cell", "mlp"])
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "gp" else n for n in AGENTS])
def test_runs_on_every_space_and_same_seed_same_run(name, space):
    runs = []
    for seed in (3, 3, 4):
        env = make_env(space)
        agent = AGENTS[name](env, seed=seed)
        agent.learn(EPISODES[name])
        runs.append(env.seen)
        archs = [a for a, _ in env.seen]
        sp = env.unwrapped.space
        assert len(archs) == EPISODES[name] == agent.counters.episodes_done
        assert all(sp.violation(sp.parse(a)) is None for a in archs)
        assert len({sp.parse(a).key() for a in archs}) == len(archs)  # duplicates are not played
        assert agent.counters.proposals == len(archs) + agent.counters.duplicates - agent.counters.fallbacks
        assert env.scalars["nas/duplicate_proposals"] == agent.counters.duplicates
        env.close()
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_every_architecture_is_reachable_and_repair_is_deterministic():
    space = load_config("mnist1d-tiny").search_space()
    enc = PositionEncoding(space)
    for arch in list(space.enumerate())[::7]:
        assert enc.decode(enc.encode(arch)) == (arch, 0)
    stop, maxpool = space.stop_action, space.ops.index(space.parse("maxpool").ops[0])
    assert space.ops[maxpool + 1].kind == "avgpool" and stop == maxpool + 2
    # stop before min_depth 1 -> the next action cyclically (op 0)
    arch, repaired = enc.decode([stop, 0, 0, 0, 0])
    assert repaired == 1 and arch.ops == (space.ops[0],) * 4
    # maxpool after pooling -> avgpool is pooling too -> stop; values after stop are not read
    arch, repaired = enc.decode([0, maxpool, maxpool, 1, 1])
    assert repaired == 1 and arch.ops == (space.ops[0], space.ops[maxpool])
    assert enc.decode([0, maxpool, maxpool, 3, 2]) == (arch, 1)
    cell = load_config("mnist1d-cell").search_space()
    values = [4, 3, 2, 1, 0, 4]
    assert PositionEncoding(cell).decode(values) == (Cell(tuple(values)), 0)  # every op allowed on every edge


def test_a_small_space_is_covered_without_repeats():
    env = make_env("mlp")
    agent = TPE(env, seed=0)
    size = env.unwrapped.space.size()
    agent.learn(size)
    assert {a for a, _ in env.seen} == {a.text() for a in env.unwrapped.space.enumerate()}
    assert agent.counters.repaired > 0  # stop before min_layers 1 is a forbidden value of d0
    trials = agent.study.trials
    assert sum(t.user_attrs.get("repaired", 0) > 0 for t in trials) == agent.counters.repaired


def test_ask_tell_is_asynchronous():
    env = make_env("mnist1d-tiny")
    agent = TPE(env, seed=1, hparams={"n_startup_trials": 2})
    assert agent.synchronous is False
    from nas_gym.agents.base import play

    asked = [agent.ask() for _ in range(4)]  # four workers busy at once
    assert len({a.key() for a in asked}) == 4
    for arch in reversed(asked):  # results arrive in another order
        agent.tell(arch, *play(env, arch))
    assert not agent.pending
    assert len([t for t in agent.study.trials if t.state.name == "COMPLETE"]) >= 4
    following = agent.ask()
    assert following.key() not in {a.key() for a in asked}


@pytest.mark.parametrize("name", ["tpe", "nsga2"])
def test_checkpoint_resumes_exactly(tmp_path, name):
    whole, parts = make_env("mnist1d-tiny"), make_env("mnist1d-tiny")
    AGENTS[name](whole, seed=7).learn(30)
    first = AGENTS[name](parts, seed=7)
    first.learn(12)
    first.save(tmp_path / "agent")
    resumed = AGENTS[name](parts, seed=99)
    resumed.load(tmp_path / "agent")
    resumed.learn(18)
    assert whole.seen == parts.seen


def test_pareto_front_and_hypervolume_by_hand():
    points = [(0.9, 30.0), (0.7, 20.0), (0.8, 10.0), (0.5, 5.0), (0.8, 10.0), (0.4, 50.0)]
    # (0.7, 20) is beaten by (0.8, 10); (0.4, 50) by all; the repeated (0.8, 10) counts once
    assert pareto_front(points) == [3, 2, 0]
    # reference cost 40, accuracy 0: (10-5)*0.5 + (30-10)*0.8 + (40-30)*0.9
    assert hypervolume(points, 40.0) == pytest.approx(27.5)
    assert hypervolume(points, 8.0) == pytest.approx(1.5)  # (8-5)*0.5: the reference clips
    assert hypervolume([], 40.0) == 0.0


@pytest.mark.parametrize("cost", ["params", "flops"])
def test_nsga2_reports_a_non_dominated_front(tmp_path, cost):
    env = make_env("mnist1d-tiny")
    agent = NSGA2(env, seed=0, hparams={"cost": cost, "population_size": 8}, logdir=tmp_path)
    agent.learn(30)
    report = json.loads((tmp_path / "pareto.json").read_text())
    points = [agent.point(r, info) for _, r, info in agent.results.values()]
    front = [(p["val_acc"], p["cost"]) for p in report["front"]]
    assert report["evaluated"] == 30 and front
    for acc, c in front:  # nothing evaluated dominates a front point
        assert not any(a >= acc and k <= c and (a, k) != (acc, c) for a, k in points)
    for acc, c in points:  # every evaluated point is on the front or dominated by it
        assert any(a >= acc and k <= c for a, k in front)
    assert report["hypervolume"] == pytest.approx(hypervolume(points, report["reference"]["cost"]))
    assert env.scalars["nas/hypervolume"] == report["hypervolume"]
    assert env.scalars["nas/pareto_size"] == len(front)
    by_arch = {info["arch"]: info for _, _, info in agent.results.values()}
    assert all(by_arch[p["arch"]][cost] == p["cost"] for p in report["front"])


def test_nsga2_latency_needs_a_latency_cost_in_the_config():
    with pytest.raises(AgentError, match="cost 'latency' .* reward.cost is 'params'"):
        NSGA2(make_env("mnist1d-tiny"), hparams={"cost": "latency"})


def test_hyperparameters_are_checked():
    assert resolve_agent("tpe") is TPE and resolve_agent("gp") is GP and resolve_agent("nsga2") is NSGA2
    with pytest.raises(AgentError, match="unknown hyperparameter.*n_trees"):
        TPE(make_env("mnist1d-tiny"), hparams={"n_trees": 3})
    with pytest.raises(AgentError, match="nsga2: cost must be one of params, flops, latency"):
        NSGA2(make_env("mnist1d-tiny"), hparams={"cost": "energy"})


@pytest.mark.parametrize("name", AGENTS)
def test_missing_optuna_is_one_line(monkeypatch, name):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    with pytest.raises(AgentError) as err:
        AGENTS[name](make_env("mnist1d-tiny"))
    assert "\n" not in str(err.value)
    assert str(err.value) == (f"--agent {name} needs the optuna package, which is not installed; "
                              "pip install 'nas-gym[optuna]'")


def test_search_command_runs_tpe_on_the_table(tmp_path):
    args = ["search", "--agent", "tpe", "--config", "mnist1d-tiny", "--evaluator", "table", "--episodes", "15",
            "--seed", "0", "--logdir", str(tmp_path)]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run_dir,) = tmp_path.iterdir()
    rows = list(csv.DictReader((run_dir / "evaluations.csv").open()))
    assert len(rows) == 15 and len({r["arch"] for r in rows}) == 15


@pytest.mark.parametrize("name", AGENTS)
def test_hyperparameter_file_is_what_the_agent_uses(name, tmp_path, monkeypatch):
    import yaml

    from nas_gym.agents import hparams

    raw = yaml.safe_load((ROOT / "envs_config" / "agents" / f"{name}.yaml").read_text())
    assert AGENTS[name](make_env("mnist1d-tiny")).args == AGENTS[name].Args(**raw["default"])
    bad = tmp_path / "agents"
    bad.mkdir()
    (bad / f"{name}.yaml").write_text("default: {duplicate_draw: 3}\n")
    monkeypatch.setattr(hparams, "HPARAM_DIRS", (bad,))
    with pytest.raises(AgentError, match=rf"{name}.yaml:default: unknown hyperparameter\(s\) duplicate_draw"):
        AGENTS[name](make_env("mnist1d-tiny"))


def test_interrupted_search_resumes_like_an_uninterrupted_one(tmp_path):
    from nas_gym.runs.search import run_search
    from tests.test_resume import interrupted_then_resumed, rows_of

    cfg = load_config("mnist1d-tiny", {"evaluator.kind": "synthetic"})
    whole = run_search(cfg, "nsga2", 26, 0, tmp_path / "whole", checkpoint_every=10).run_dir
    run_dir = interrupted_then_resumed(tmp_path, "nsga2", 26, stop_at=17, every=10)
    keep = ("episode", "arch", "reward")
    assert [{k: r[k] for k in keep} for r in rows_of(run_dir)] == [{k: r[k] for k in keep} for r in rows_of(whole)]
    assert json.loads((run_dir / "pareto.json").read_text()) == json.loads((whole / "pareto.json").read_text())
