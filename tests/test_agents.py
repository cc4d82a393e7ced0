"""Agents: episode budgets, seeded determinism, learning, masks, checkpoints, the registry.

All on the tiny preset with the synthetic evaluator (instant, known optimum), so the whole
file is a few seconds of search plus torch's import.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from nas_gym.agents.base import AgentError, resolve_agent
from nas_gym.agents.q_learning import METAQNN_SCHEDULE, QLearning, epsilon_at, scaled_schedule
from nas_gym.agents.random_search import RandomSearch
from nas_gym.agents.sb3 import DQNAgent, MaskablePPOAgent, PPOAgent

ALL_AGENTS = ("random", "qlearning", "reinforce", "ppo", "a2c", "dqn", "maskable_ppo")
MASK_RESPECTING = {"random", "qlearning", "reinforce", "maskable_ppo"}


class EpisodeLog(gym.Wrapper):
    """Records what an agent did: finished architectures, rewards, masked actions, epsilons.

    It defines no ``action_masks``, so agents must find the env's through it."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.archs: list[str] = []
        self.rewards: list[float] = []
        self.invalid = 0
        self.masked_actions = 0
        self.scalars: dict[str, list[float]] = {}

    def step(self, action):
        if not self.env.unwrapped.action_masks()[int(action)]:
            self.masked_actions += 1
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            self.archs.append(info["arch"])
            self.rewards.append(float(reward))
            self.invalid += bool(info.get("invalid_action"))
        return obs, reward, terminated, truncated, info

    def record_scalar(self, tag: str, value: float, step: int | None = None) -> None:
        self.scalars.setdefault(tag, []).append(value)

    @property
    def evaluator(self):
        return self.env.unwrapped.evaluator


class AllowEverything(gym.Wrapper):
    """Claims every action is allowed, so a mask-following agent sends forbidden ones."""

    def action_masks(self) -> np.ndarray:
        return np.ones(self.action_space.n, dtype=bool)


def run(name: str, make_env, episodes: int, seed: int = 0, hparams: dict | None = None) -> EpisodeLog:
    env = EpisodeLog(make_env())
    resolve_agent(name)(env, seed=seed, hparams=hparams).learn(episodes)
    return env


@pytest.mark.parametrize("name", ALL_AGENTS, ids=ALL_AGENTS)
def test_runs_exactly_n_episodes(name, make_env):
    env = EpisodeLog(make_env())
    agent = resolve_agent(name)(env, seed=0)
    agent.learn(13)
    agent.learn(9)  # a second call continues, and counts on its own
    assert len(env.archs) == 22
    assert env.evaluator.stats.evaluations + env.invalid == 22
    if name in MASK_RESPECTING:
        assert env.masked_actions == env.invalid == 0


@pytest.mark.parametrize("name", ["random", "qlearning", "ppo", "maskable_ppo"])
def test_seeded_determinism(name, make_env):
    first, again, other = (run(name, make_env, 30, seed=s).archs for s in (3, 3, 4))
    assert first == again
    assert first != other


# -- Q-learning -------------------------------------------------------------------------------
EPISODE_SCHEDULE = {"count_unique": False}


def test_qlearning_counts_unique_models_by_default(make_env):
    """MetaQNN's schedule advances with distinct models: a repeat neither retrains nor moves epsilon."""
    env = EpisodeLog(make_env())
    agent = QLearning(env, seed=0, hparams={"epsilon_schedule": [[1.0, 30], [0.0, 1]]})
    agent.learn(60)
    space = env.unwrapped.space
    distinct = {space.parse(a).key() for a in env.archs}
    assert len(env.archs) == 60 and agent.schedule_position == len(distinct) < 60
    assert agent.epsilon == (1.0 if len(distinct) < 30 else 0.0)
    episodes = QLearning(EpisodeLog(make_env()), seed=0, hparams={**EPISODE_SCHEDULE, "epsilon_schedule": [[1.0, 30], [0.0, 1]]})
    episodes.learn(60)
    assert episodes.schedule_position == 60 and episodes.epsilon == 0.0


def greedy_arch(agent: QLearning, env: gym.Env) -> str:
    obs, _ = env.reset()
    while True:
        obs, _, terminated, truncated, info = env.step(agent.greedy_actions(obs)[0])
        if terminated or truncated:
            return info["arch"]


@pytest.fixture(scope="module")
def metaqnn_run(make_env):
    """MetaQNN's full budget, 2,700 episodes (about 2 s), seed 0, on the 1,174-architecture space.
    The schedule counts episodes: 2,700 unique models do not exist in this space."""
    env = EpisodeLog(make_env())
    agent = QLearning(env, seed=0, hparams=EPISODE_SCHEDULE)
    agent.learn(2700)
    return agent, env


def test_qlearning_improves(metaqnn_run):
    _, env = metaqnn_run
    rewards = np.array(env.rewards)
    # epsilon 1.0 for the first 1,500 episodes, 0.1 for the last 150
    assert rewards[-150:].mean() > rewards[:1500].mean() + 0.15


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_qlearning_beats_random_search(make_env, seed):
    """Against random search at the same budget and seed: once epsilon has fallen, the chains
    Q-learning samples are better than random ones, and its greedy chain is near the optimum
    (the claim MetaQNN makes, on the synthetic problem whose optimum is known exactly)."""
    q_env, r_env = EpisodeLog(make_env()), EpisodeLog(make_env())
    agent = QLearning(q_env, seed=seed, hparams=EPISODE_SCHEDULE)
    agent.learn(2700)
    RandomSearch(r_env, seed=seed).learn(2700)
    _, optimum = q_env.evaluator.optimum()
    assert np.mean(q_env.rewards[-150:]) > np.mean(r_env.rewards[-150:]) + 0.1
    greedy = q_env.evaluator.score(q_env.unwrapped.space.parse(greedy_arch(agent, q_env)))
    assert optimum - greedy < optimum - np.mean(r_env.rewards)  # nearer the optimum than a random chain
    assert optimum - greedy < 0.05


def test_metaqnn_schedule_shape():
    assert scaled_schedule(2700) == list(METAQNN_SCHEDULE)
    assert scaled_schedule(270) == [(e, n // 10) for e, n in METAQNN_SCHEDULE]
    for total in (1, 7, 100, 333, 5000):
        stages = scaled_schedule(total)
        assert sum(n for _, n in stages) == total
        assert [e for e, _ in stages] == [e for e, _ in METAQNN_SCHEDULE]
    assert scaled_schedule(100)[0] == (1.0, 56)  # 1,500 / 2,700 of the budget
    assert epsilon_at(10**6, scaled_schedule(100)) == 0.1


def test_qlearning_epsilon_follows_schedule(make_env):
    env = EpisodeLog(make_env())
    agent = QLearning(env, seed=0, hparams=EPISODE_SCHEDULE)
    assert agent.epsilon == 1.0
    agent.learn(270)
    expected = [e for e, n in METAQNN_SCHEDULE for _ in range(n // 10)]
    assert env.scalars["nas/epsilon"] == expected
    assert agent.epsilon == 0.1  # past the schedule the last value stays

    explicit = EpisodeLog(make_env())
    QLearning(explicit, hparams={**EPISODE_SCHEDULE, "epsilon_schedule": [[0.5, 2], [0.0, 1]]}).learn(4)
    assert explicit.scalars["nas/epsilon"] == [0.5, 0.5, 0.0, 0.0]


def test_qlearning_counts_invalid_episodes(make_env):
    env = EpisodeLog(AllowEverything(make_env()))
    QLearning(env, seed=0, hparams={"replay": 8}).learn(40)
    assert len(env.archs) == 40
    assert env.invalid > 0
    assert env.evaluator.stats.evaluations == 40 - env.invalid


def test_qlearning_checkpoint_resumes_identically(make_env, tmp_path):
    hparams = {"total_episodes": 80, "replay": 16}
    whole = EpisodeLog(make_env())
    uninterrupted = QLearning(whole, seed=0, hparams=hparams)
    uninterrupted.learn(80)

    part = EpisodeLog(make_env())
    first = QLearning(part, seed=0, hparams=hparams)
    first.learn(40)
    first.save(tmp_path / "q.json")
    second = QLearning(part, seed=123, hparams=hparams)  # the seed must not matter after load
    second.load(tmp_path / "q.json")
    second.learn(40)

    assert part.archs == whole.archs
    assert second.q == uninterrupted.q
    assert second.episodes_done == 80
    assert [p.name for p in tmp_path.iterdir()] == ["q.json"]  # no temp file left behind


# -- SB3 --------------------------------------------------------------------------------------
def test_action_masks_reach_through_wrappers(make_env):
    """gymnasium 1.x wrappers do not forward attributes, but SB3's vector envs look methods up
    with get_wrapper_attr, which walks down to the env: no wrapper needs its own action_masks."""
    inner = make_env()
    inner.reset()
    wrapped = Monitor(EpisodeLog(gym.wrappers.TimeLimit(inner, 10)))
    assert not hasattr(wrapped, "action_masks")
    venv = DummyVecEnv([lambda: wrapped])
    venv.reset()
    assert is_masking_supported(wrapped) and is_masking_supported(venv)
    np.testing.assert_array_equal(get_action_masks(venv)[0], inner.unwrapped.action_masks())


def test_maskable_ppo_never_sends_masked_action(make_env):
    log = EpisodeLog(make_env())
    venv = DummyVecEnv([lambda: Monitor(log)])
    MaskablePPOAgent(venv, seed=0).learn(40)
    assert len(log.archs) == 40
    assert log.masked_actions == log.invalid == 0


def test_sb3_agent_keeps_its_own_random_state(make_env):
    """SB3 draws from the global generators; the agent swaps in its own, so interleaved agents
    and other code neither disturb it nor are disturbed."""
    import torch

    np_before, torch_before = np.random.get_state()[1].copy(), torch.get_rng_state()
    alone = EpisodeLog(make_env())
    agent = PPOAgent(alone, seed=5)
    agent.learn(10)
    agent.learn(10)
    np.testing.assert_array_equal(np.random.get_state()[1], np_before)
    assert torch.equal(torch.get_rng_state(), torch_before)

    mixed, other = EpisodeLog(make_env()), EpisodeLog(make_env())
    a, b = PPOAgent(mixed, seed=5), PPOAgent(other, seed=6)
    a.learn(10)
    b.learn(10)
    np.random.rand(), torch.rand(3)
    a.learn(10)
    assert mixed.archs == alone.archs


def test_nas_scalars_in_sb3_tensorboard(make_env, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    env = make_env()
    PPOAgent(env, seed=0, logdir=tmp_path).learn(30)
    events = EventAccumulator(str(tmp_path / "sb3"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"nas/val_acc", "nas/best_val_acc", "nas/params", "nas/evaluations", "nas/cache_hit_rate",
            "rollout/ep_rew_mean", "train/loss"} <= tags
    assert events.Scalars("nas/evaluations")[-1].value == env.unwrapped.evaluator.stats.evaluations


def test_sb3_save_load_and_episode_exploration(make_env, tmp_path):
    agent = DQNAgent(make_env(), seed=0)
    agent.learn(20)
    assert agent.model.exploration_rate == pytest.approx(0.05)  # decayed over half the budget
    agent.save(tmp_path / "dqn.zip")
    assert (tmp_path / "dqn.zip").exists() and DQNAgent.replay_path(tmp_path / "dqn.zip").exists()
    size = agent.model.replay_buffer.size()
    resumed = DQNAgent(make_env(), seed=1)
    resumed.load(tmp_path / "dqn.zip")
    assert resumed.episodes_done == 20 and resumed.model.replay_buffer.size() == size
    resumed.learn(5)
    assert resumed.episodes_done == 25


# -- hyperparameters and the registry -----------------------------------------------------------
@pytest.mark.parametrize("name", ALL_AGENTS, ids=ALL_AGENTS)
def test_unknown_hparams_rejected(name, make_env):
    with pytest.raises(AgentError, match="bogus_knob"):
        resolve_agent(name)(make_env(), hparams={"bogus_knob": 1})


def test_sb3_hparams_reach_the_model(make_env):
    agent = PPOAgent(make_env(), hparams={"n_steps": 16, "batch_size": 16})
    assert agent.model.n_steps == 16 and agent.model.gamma == 1.0
    with pytest.raises(AgentError, match="tensorboard_log"):
        PPOAgent(make_env(), hparams={"tensorboard_log": "x"})


def test_resolve_module_path_and_file(tmp_path, make_env):
    assert resolve_agent("nas_gym.agents.random_search:RandomSearch") is RandomSearch
    (tmp_path / "my_agent.py").write_text(
        "class MyAgent:\n"
        "    def __init__(self, env, seed=0, hparams=None, logdir=None):\n"
        "        self.env = env\n"
        "    def learn(self, episodes):\n"
        "        for _ in range(episodes):\n"
        "            self.env.reset()\n"
        "            self.env.step(self.env.unwrapped.space.stop_action - 1)\n"
        "            self.env.step(self.env.unwrapped.space.stop_action)\n"
    )
    cls = resolve_agent(f"{tmp_path / 'my_agent.py'}:MyAgent")
    env = EpisodeLog(make_env())
    cls(env).learn(3)
    assert len(env.archs) == 3
