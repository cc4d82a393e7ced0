"""Gymnasium seeding reaches the noise a table or the surrogate draws per run: seeding the first
``reset`` (as SB3 and rl_zoo3 do) gives another seed other training runs and the same seed the
same ones, exactly as the constructor's ``seed=``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

import nas_gym  # noqa: F401  (registers the envs)
from nas_gym.agents.base import play
from nas_gym.agents.sb3_vec import NasVecEnv
from nas_gym.config import load_config
from nas_gym.evaluators.table import TABLE_DIR

# (preset, evaluator): the two evaluators that draw noise per run
NOISY = [pytest.param("mnist1d-tiny", "table", id="table"), pytest.param("mnist1d", "surrogate", id="surrogate")]
N_ARCHS = 24  # enough that two run seeds differ somewhere: a table draws one of 2 seeds per architecture

pytestmark = pytest.mark.skipif(not (TABLE_DIR / "mnist1d-tiny.jsonl.gz").is_file(), reason="shipped table not built")


def _archs(preset: str) -> list:
    space = load_config(preset).search_space()
    rng = np.random.default_rng(7)
    return [space.sample(rng) for _ in range(N_ARCHS)]


def _rewards(preset: str, kind: str, reset_seed: int | None, ctor_seed: int | None = None) -> list[float]:
    env = gym.make("NasGym/LayerChain-v0", config=preset, evaluator=kind, seed=ctor_seed)
    env.reset(seed=reset_seed)
    rewards = [play(env, arch)[0] for arch in _archs(preset)]
    env.close()
    return rewards


@pytest.mark.parametrize(("preset", "kind"), NOISY)
def test_reset_seed_sets_the_run_seed(preset, kind):
    a, a_again, b = (_rewards(preset, kind, s) for s in (3, 3, 4))
    assert a == a_again
    assert a != b


@pytest.mark.parametrize(("preset", "kind"), NOISY)
def test_constructor_seed_is_the_same_thing(preset, kind):
    assert _rewards(preset, kind, None, ctor_seed=5) == _rewards(preset, kind, 5)


def test_later_reseeds_leave_drawn_noise_alone():
    """Once an architecture was drawn, a repeat must get the same noise, as a cache would give."""
    env = gym.make("NasGym/LayerChain-v0", config="mnist1d-tiny", evaluator="table")
    env.reset(seed=1)
    arch = _archs("mnist1d-tiny")[0]
    first = play(env, arch)[0]
    for seed in range(2, 8):
        env.reset(seed=seed)
        assert play(env, arch)[0] == first
    assert env.unwrapped.evaluator.run_seed == 1


def test_sb3_seeding_of_a_vector_env():
    """SB3's ``set_random_seed`` calls ``VecEnv.seed``: the run seed follows it."""
    def run(seed: int) -> list[float]:
        vec = DummyVecEnv([lambda: gym.make("NasGym/LayerChain-v0", config="mnist1d-tiny", evaluator="table")])
        vec.seed(seed)
        vec.reset()
        env = vec.envs[0]
        rewards = [play(env, arch)[0] for arch in _archs("mnist1d-tiny")]
        vec.close()
        return rewards

    assert run(0) == run(0) != run(1)
    nas_vec = NasVecEnv(2, "mnist1d-tiny", evaluator="table", seed=0)
    nas_vec.seed(9)
    assert nas_vec.evaluator.unwrapped.run_seed == 9
    nas_vec.close()
