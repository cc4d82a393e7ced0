"""The batched vector env: one evaluate_many per step, in-flight de-duplication, SB3 conventions."""

import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib import MaskablePPO

from nas_gym.agents.sb3_vec import NasVecEnv
from nas_gym.config import load_config
from nas_gym.evaluators.base import EvalResult
from nas_gym.evaluators.synthetic import SyntheticEvaluator
from nas_gym.evaluators.training import TrainingEvaluator
from nas_gym.spaces.layer_chain.chain import Chain
from nas_gym.storage.cache import MemoryCache
from nas_gym.training import train as train_module


@pytest.fixture
def counting_evaluator(monkeypatch, tmp_path):
    """A TrainingEvaluator whose training is replaced by a fake that records what it trains."""
    trained: list[str] = []

    def fake(arch, data, config, runtime, *, want_test=False, space=None):
        trained.append(arch.text())
        return EvalResult(arch=arch.text(), val_acc=0.5 + 0.01 * len(arch), params=len(arch), flops=len(arch))

    monkeypatch.setattr(train_module, "evaluate_architecture", fake)
    cfg = load_config("mnist1d-tiny", {"data.root": str(tmp_path)})
    evaluator = TrainingEvaluator(cfg, cache=MemoryCache())
    calls: list[int] = []
    inner = evaluator.evaluate_many

    def spy(archs):
        calls.append(len(archs))
        return inner(archs)

    evaluator.evaluate_many = spy
    return evaluator, trained, calls


def test_finished_architectures_are_evaluated_together_and_once(counting_evaluator):
    evaluator, trained, calls = counting_evaluator
    venv = NasVecEnv(4, "mnist1d-tiny", evaluator=evaluator, seed=0)
    space = evaluator.space
    conv = space.action_of(Chain.parse("conv3-16").ops[0])
    pool = space.action_of(Chain.parse("maxpool").ops[0])
    venv.reset()
    venv.step(np.array([conv, conv, conv, pool]))
    obs, rewards, dones, infos = venv.step(np.full(4, space.stop_action))
    assert dones.all()
    assert calls == [4], "all four finished architectures go to the evaluator in one call"
    assert trained == ["conv3-16", "maxpool"], "the architecture in flight for three sub-envs is trained once"
    assert evaluator.stats.evaluations == 4 and evaluator.stats.cache_hits == 2
    assert rewards.tolist() == pytest.approx([0.51, 0.51, 0.51, 0.51])
    assert all("terminal_observation" in info for info in infos)
    assert infos[0]["terminal_observation"][-2] > 0 and obs[0][-2] == 0.0, "auto-reset to the empty chain"


def test_intermediate_steps_evaluate_nothing(counting_evaluator):
    evaluator, trained, calls = counting_evaluator
    venv = NasVecEnv(2, "mnist1d-tiny", evaluator=evaluator, seed=0)
    venv.reset()
    venv.step(np.array([0, 1]))
    assert calls == [] and trained == []


def test_action_masks_shape_and_values():
    cfg = load_config("mnist1d-tiny")
    venv = NasVecEnv(3, cfg, evaluator=SyntheticEvaluator(cfg.search_space()), seed=0)
    venv.reset()
    masks = venv.action_masks()
    assert masks.shape == (3, venv.action_space.n)
    assert not masks[:, -1].any(), "stop is masked on the empty chain"
    assert np.array_equal(np.stack(venv.env_method("action_masks")), masks)


def test_maskable_ppo_learns_on_vec_env_without_invalid_actions():
    cfg = load_config("mnist1d-tiny")
    venv = NasVecEnv(2, cfg, evaluator=SyntheticEvaluator(cfg.search_space()), seed=0)
    model = MaskablePPO("MlpPolicy", venv, n_steps=16, batch_size=16, seed=0, device="cpu")
    model.learn(64)
    assert venv.evaluator.stats.evaluations > 0
    # no episode ended by a forbidden action: every finished episode was evaluated
    lengths = [len(env.get_episode_lengths()) for env in venv.envs]
    assert sum(lengths) == venv.evaluator.stats.evaluations


def test_gymnasium_make_vec_runs_the_env_with_masks():
    """``gymnasium.make_vec`` (sync) works on the registered id; masks come through ``call``."""
    venv = gym.make_vec("NasGym/LayerChain-v0", num_envs=3, vectorization_mode="sync", config="mnist1d-tiny",
                        evaluator="table")
    venv.reset(seed=0)
    finished = []
    for _ in range(12):
        masks = np.stack(venv.call("action_masks"))
        assert masks.shape == (3, venv.single_action_space.n)
        _, rewards, terminated, _, infos = venv.step(np.array([np.flatnonzero(m)[-1] for m in masks]))
        finished += [float(r) for r, t in zip(rewards, terminated, strict=True) if t]
    venv.close()
    assert len(finished) >= 3 and all(0.0 < r <= 1.0 for r in finished)
