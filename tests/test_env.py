"""The LayerChain env: both env checkers, masks, determinism, rewards and rendering."""

import gymnasium as gym
import numpy as np
import pytest
from data_files import preset_data
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import nas_gym
from nas_gym.config import load_config, preset_names
from nas_gym.evaluators.synthetic import SyntheticEvaluator
from nas_gym.spaces.layer_chain.chain import Chain


def make(preset: str = "mnist1d-tiny", seed: int = 0, **kwargs) -> gym.Env:
    cfg = load_config(preset)
    evaluator = SyntheticEvaluator(cfg.search_space(), seed=seed, num_classes=cfg.num_classes)
    return gym.make("NasGym/LayerChain-v0", config=cfg, evaluator=evaluator, **kwargs)


@pytest.mark.parametrize("env_id", nas_gym.ENV_IDS)
@pytest.mark.parametrize("preset", preset_names())
def test_env_checkers(env_id, preset, tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_GYM_DATA", str(tmp_path / "cache"))  # where an image folder's tensors are cached
    cfg = load_config(preset, preset_data(preset, tmp_path))  # presets of a user's data get a small one
    env = gym.make(env_id, config=cfg, evaluator=SyntheticEvaluator(cfg.search_space()))
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)


def test_registered_on_import():
    assert "NasGym/LayerChain-v0" in gym.registry


def test_spaces_match_preset():
    env = make()
    space = env.unwrapped.space
    assert env.action_space.n == len(space.ops) + 1
    assert env.observation_space.shape == (space.max_depth * len(space.ops) + 2,)


def test_episode_builds_and_scores_architecture():
    env = make()
    space, evaluator = env.unwrapped.space, env.unwrapped.evaluator
    env.reset(seed=0)
    arch = Chain.parse("conv3-16|maxpool|conv5-16")
    for op in arch.ops:
        obs, reward, terminated, truncated, info = env.step(space.action_of(op))
        assert reward == 0.0 and not terminated and not truncated
    obs, reward, terminated, truncated, info = env.step(space.stop_action)
    assert terminated and not truncated
    assert info["arch"] == arch.text()
    assert reward == pytest.approx(evaluator.score(arch)) == pytest.approx(info["val_acc"])
    assert {"params", "flops", "status", "reason"} <= set(info)
    assert evaluator.stats.evaluations == 1


def test_max_depth_ends_episode_with_evaluation():
    env = make()
    space = env.unwrapped.space
    env.reset(seed=0)
    conv = space.action_of(Chain.parse("conv3-16").ops[0])
    for _ in range(space.max_depth):
        _, reward, terminated, _, info = env.step(conv)
    assert terminated and "val_acc" in info and len(Chain.parse(info["arch"])) == space.max_depth


def test_equal_prefixes_equal_observations():
    env_a, env_b = make(), make()
    obs_a, _ = env_a.reset(seed=1)
    obs_b, _ = env_b.reset(seed=2)
    assert np.array_equal(obs_a, obs_b)
    for action in (0, 4):
        obs_a, *_ = env_a.step(action)
        obs_b, *_ = env_b.step(action)
    assert np.array_equal(obs_a, obs_b)
    env_b.reset()
    obs_c, *_ = env_b.step(4)
    assert not np.array_equal(obs_a, obs_c)


def test_forbidden_action_ends_episode_deterministically():
    env = make(overrides={"reward.invalid_action_reward": -1.0})
    space = env.unwrapped.space
    env.reset(seed=0)
    assert not env.unwrapped.action_masks()[space.stop_action], "stop is masked on the empty chain"
    obs, reward, terminated, truncated, info = env.step(space.stop_action)
    assert terminated and reward == -1.0 and info["invalid_action"] is True
    assert env.unwrapped.evaluator.stats.evaluations == 0
    maxpool = space.action_of(Chain.parse("maxpool").ops[0])
    env.reset()
    env.step(maxpool)
    _, reward, terminated, _, info = env.step(maxpool)
    assert terminated and reward == -1.0 and info["invalid_action"]


def test_action_masks_match_space():
    env = make()
    env.reset(seed=0)
    space = env.unwrapped.space
    env.step(space.action_of(Chain.parse("maxpool").ops[0]))
    assert np.array_equal(env.unwrapped.action_masks(), space.mask(Chain.parse("maxpool")))


def test_seeded_determinism_of_random_rollouts():
    def rollout(seed):
        env = make()
        env.reset(seed=seed)
        env.action_space.seed(seed)
        trace = []
        for _ in range(30):
            mask = env.unwrapped.action_masks()
            action = env.unwrapped.np_random.choice(np.flatnonzero(mask))
            obs, reward, terminated, truncated, info = env.step(action)
            trace.append((int(action), reward, info.get("arch")))
            if terminated:
                env.reset()
        return trace

    assert rollout(3) == rollout(3)
    assert rollout(3) != rollout(4)


def test_render_ansi():
    env = make(render_mode="ansi")
    env.reset(seed=0)
    assert "<empty>" in env.render()
    env.step(0)
    text = env.render()
    assert env.unwrapped.space.ops[0].text() in text and "depth 1/" in text


def test_failure_gets_chance_reward():
    from nas_gym.evaluators.base import EvalResult

    class Failing(SyntheticEvaluator):
        def evaluate(self, arch):
            result = EvalResult.failure(arch.text(), "nan_loss")
            self.stats.charge(result, cached=False)
            return result

    cfg = load_config("mnist1d-tiny")
    env = gym.make("NasGym/LayerChain-v0", config=cfg, evaluator=Failing(cfg.search_space()))
    env.reset(seed=0)
    env.step(0)
    _, reward, terminated, _, info = env.step(env.unwrapped.space.stop_action)
    assert terminated and reward == pytest.approx(0.1) and info["status"] == "failed" and info["reason"] == "nan_loss"
