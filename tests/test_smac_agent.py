"""SMAC3 as an agent (``smac``): runs on the layer chain, the cell and a user's space, each
episode a new valid architecture; the same seed gives the same run; ask/tell works
asynchronously; it writes its history under the run folder; a missing smac is one line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from nas_gym.agents.base import AgentError, play, resolve_agent
from nas_gym.agents.smac_agent import SMAC
from nas_gym.envs.nas_env import NasEnv
from tests.test_optuna_agents import make_env

pytest.importorskip("smac")

ROOT = Path(__file__).resolve().parent.parent
EPISODES = 20  # the 10-point Sobol start, then two refits of the forest


@pytest.fixture(autouse=True)
def _from_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the MLP preset names its space by a path relative to the checkout


@pytest.mark.slow
@pytest.mark.parametrize("space", ["mnist1d-tiny", "mnist1d-cell", "mlp"])
def test_runs_on_every_space_and_same_seed_same_run(space, tmp_path):
    runs = []
    for i, seed in enumerate((2, 2, 5)):
        env = make_env(space)
        agent = SMAC(env, seed=seed, logdir=tmp_path / str(i))
        agent.learn(EPISODES)
        runs.append(env.seen)
        sp = env.unwrapped.space
        archs = [sp.parse(a) for a, _ in env.seen]
        assert len(archs) == EPISODES == agent.counters.episodes_done
        assert all(sp.violation(a) is None for a in archs)
        assert len({a.key() for a in archs}) == EPISODES  # duplicates are not played
        assert agent.smac.runhistory.finished == agent.counters.proposals + agent.counters.fallbacks
        assert any((tmp_path / str(i) / "smac").rglob("runhistory.json"))
        env.close()
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_ask_tell_is_asynchronous_and_told_costs_are_one_minus_reward():
    env = make_env("mnist1d-cell")
    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    agent = SMAC(env, seed=0)
    assert (root.level, root.handlers) == before  # SMAC's logging set-up would replace the root logger's
    assert agent.synchronous is False and resolve_agent("smac") is SMAC
    asked = [agent.ask() for _ in range(3)]
    assert len({a.key() for a in asked}) == 3
    rewards = {}
    for arch in reversed(asked):
        reward, info = play(env, arch)
        rewards[arch.text()] = reward
        agent.tell(arch, reward, info)
    told = {v.additional_info["arch"]: v.cost for v in agent.smac.runhistory.values()}
    assert told == pytest.approx({text: 1.0 - r for text, r in rewards.items()})


def test_hyperparameters_are_checked():
    with pytest.raises(AgentError, match="smac: initial_design must be >= 1"):
        SMAC(make_env("mnist1d-tiny"), hparams={"initial_design": 0})
    with pytest.raises(AgentError, match="unknown hyperparameter.*population_size"):
        SMAC(make_env("mnist1d-tiny"), hparams={"population_size": 3})


def test_missing_smac_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "smac", None)  # import smac now raises ImportError
    with pytest.raises(AgentError) as err:
        SMAC(make_env("mnist1d-tiny"))
    assert str(err.value) == "--agent smac needs the smac package, which is not installed; pip install 'nas-gym[smac]'"


def test_missing_smac_is_one_line_for_its_hyperband_too(monkeypatch):
    from nas_gym.agents.smac_hyperband import SMACHyperband

    monkeypatch.setitem(sys.modules, "smac", None)
    with pytest.raises(AgentError) as err:
        SMACHyperband(NasEnv("mf-chain", evaluator="table"))
    assert str(err.value) == "--agent smac_hb needs the smac package, which is not installed; pip install 'nas-gym[smac]'"


def test_smac_goes_on_when_it_runs_out_of_configurations():
    """A 6-chain space: SMAC soon has no configuration left; the search goes on with uniform draws."""
    from nas_gym.config import load_config
    from nas_gym.evaluators.synthetic import SyntheticEvaluator

    cfg = load_config("mnist1d-tiny", {"space.ops": ["conv3-16", "conv5-16"], "space.max_depth": 2})
    env = NasEnv(cfg, evaluator=SyntheticEvaluator(cfg.search_space(), seed=0))
    agent = SMAC(env, seed=0, hparams={"initial_design": 3})
    agent.learn(30)
    assert agent.exhausted and agent.counters.episodes_done == 30 and agent.counters.fallbacks > 0
