"""Smoke tests of the CUDA path, run wherever torch sees a GPU and skipped, with the reason,
elsewhere (``tests/conftest.py``). A GPU owner runs them with
``bash scripts/test.sh -m gpu tests/test_gpu_smoke.py``; ``scripts/bench_gpu.py`` measures speed."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from nas_gym.agents.darts import Darts
from nas_gym.config import load_config
from nas_gym.data import load_dataset
from nas_gym.evaluators.synthetic import SyntheticEvaluator
from nas_gym.evaluators.training import TrainingEvaluator
from nas_gym.storage.cache import MemoryCache, result_context
from nas_gym.training.numerics import numerics_identity
from nas_gym.training.train import evaluate_architecture

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize(("preset", "arch"), [("mnist1d-tiny", "conv3-16|maxpool|conv3-32"),
                                              ("digits", "conv3-32|res3-32|maxpool|dropout0.2")], ids=["1d", "2d"])
def test_one_architecture_trains_on_the_gpu_reproducibly_when_deterministic(preset, arch):
    cfg = load_config(preset, {"runtime.device": "cuda", "runtime.deterministic": True, "train.epochs": 2})
    space, data = cfg.search_space(), load_dataset(cfg.data).to("cuda")
    first, second = (evaluate_architecture(space.parse(arch), data, cfg.train, cfg.runtime, space=space)
                     for _ in range(2))
    assert first.ok and first.val_acc > 1.5 / cfg.num_classes
    assert (first.val_acc, first.train_loss) == (second.val_acc, second.train_loss)
    gpu_key = result_context(cfg, space, numerics_identity(cfg.runtime, torch.device("cuda", 0)))
    assert gpu_key != result_context(cfg, space)


def test_a_darts_run_resumes_on_the_gpu(tmp_path):
    def env() -> gym.Env:
        cfg = load_config("mnist1d-cell", {"data.train_fraction": 0.1, "runtime.device": "cuda",
                                           "runtime.deterministic": True})
        return gym.make("NasGym/LayerChain-v0", config=cfg, evaluator=SyntheticEvaluator(cfg.search_space()))

    straight = Darts(env(), seed=2)
    straight.learn(2)
    first = Darts(env(), seed=2)
    first.learn(1)
    first.save(tmp_path / "darts.pt")
    resumed = Darts(env(), seed=2)
    resumed.load(tmp_path / "darts.pt")
    resumed.learn(1)
    assert resumed.alpha.device.type == "cuda"
    torch.testing.assert_close(resumed.alpha, straight.alpha)


def test_a_two_worker_process_pool_trains_on_the_gpus():
    per_worker = 1.0 if torch.cuda.device_count() >= 2 else 0.5
    cfg = load_config("mnist1d-tiny", {"runtime.device": "cuda", "evaluator.backend": "process",
                                       "evaluator.workers": 2, "evaluator.gpus_per_eval": per_worker,
                                       "train.epochs": 1})
    with TrainingEvaluator(cfg, cache=MemoryCache()) as ev:
        results = ev.evaluate_many([ev.space.parse(t) for t in ("conv3-16", "avgpool|conv3-16", "conv5-16|maxpool")])
        assert len(set(ev.backend.pool.gpus)) == min(2, torch.cuda.device_count())
    assert [r.status for r in results] == ["ok"] * 3
