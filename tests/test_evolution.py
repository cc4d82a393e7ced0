"""Regularized evolution: finds the synthetic optimum, ages its population, resumes exactly."""

import pytest

from nas_gym.agents.base import AgentError
from nas_gym.agents.evolution import RegularizedEvolution
from tests.conftest import make_synthetic_env


def optimum(env):
    return env.unwrapped.evaluator.optimum()[0].text()



class Recording:
    """Collects every evaluated architecture through the env's infos."""

    def __init__(self, env):
        self.env, self.archs = env, []

    def __call__(self, agent, episodes):
        import gymnasium as gym

        archs = self.archs

        class Spy(gym.Wrapper):
            def step(self, action):
                out = self.env.step(action)
                if out[2] and "val_acc" in out[4]:
                    archs.append(out[4]["arch"])
                return out

        agent.env = Spy(self.env)
        agent.learn(episodes)


def test_finds_known_optimum_within_budget():
    env = make_synthetic_env()
    rec = Recording(env)
    rec(RegularizedEvolution(env, seed=0), 150)
    assert optimum(env) in rec.archs, "seed 0 reaches the optimum of mnist1d-tiny/synthetic in 150 episodes"
    assert len(rec.archs) == 150


def test_population_ages_out_oldest():
    env = make_synthetic_env()
    agent = RegularizedEvolution(env, seed=1, hparams={"population": 5, "sample": 2})
    agent.learn(12)
    assert len(agent.population) == 5 and agent.episodes_done == 12


def test_save_load_continues_identically(tmp_path):
    straight_env, split_env = make_synthetic_env(), make_synthetic_env()
    a, b = Recording(straight_env), Recording(split_env)
    a(RegularizedEvolution(straight_env, seed=3), 40)
    first = RegularizedEvolution(split_env, seed=3)
    b(first, 15)
    first.save(tmp_path / "evo.json")
    resumed = RegularizedEvolution(split_env, seed=99)
    resumed.load(tmp_path / "evo.json")
    b(resumed, 25)
    assert a.archs == b.archs


def test_bad_hparams():
    with pytest.raises(AgentError, match="sample <= population"):
        RegularizedEvolution(make_synthetic_env(), hparams={"population": 2, "sample": 3})
    with pytest.raises(AgentError, match="unknown hyperparameter"):
        RegularizedEvolution(make_synthetic_env(), hparams={"size": 3})
