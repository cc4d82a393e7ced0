"""The GPU trainer's numerics, checked on a CPU: what joins the cache key off the CPU, out of
memory kept per run, fp16 loss scaling, deterministic mode, device validation, seeding that leaves
CUDA's generators alone, channels_last for stacked members, and memory freed after an
out-of-memory error. CUDA is simulated by monkeypatching ``torch.cuda`` functions."""

from __future__ import annotations

import hashlib
import json
import os
import weakref

import numpy as np
import pytest
import torch

import nas_gym.training.train as train_mod
from nas_gym.config import ConfigError, load_config
from nas_gym.data import load_dataset
from nas_gym.evaluators.base import EvalResult
from nas_gym.evaluators.training import TrainingEvaluator, check_setup
from nas_gym.execution.backends import BackendBase
from nas_gym.execution.worker import WorkerState
from nas_gym.storage.cache import TRAINER_VERSION, MemoryCache, ResultCache, result_context
from nas_gym.training.device import resolve_device
from nas_gym.training.fit import Runner
from nas_gym.training.numerics import (
    CUBLAS_ENV,
    DeviceLostError,
    LossScaler,
    MeanPool,
    deterministic_pooling,
    numerics_identity,
    numerics_settings,
)

CUDA = torch.device("cuda", 0)


@pytest.fixture
def gpu(monkeypatch):
    """A simulated CUDA host; ``gpu(major)`` sets the compute capability."""
    def make(major: int = 8, count: int = 1) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, 0))
    return make


def test_cpu_key_is_the_key_it_always_was():
    """Old CPU cache rows stay valid: no numerics on a CPU, and the payload is the old one."""
    cfg = load_config("mnist1d-tiny")
    space = cfg.search_space()
    assert numerics_identity(cfg.runtime, torch.device("cpu")) == {}
    old = {"recipe": cfg.context_hash(), "space": space.kind, "identity": space.identity(),
           "trainer_version": TRAINER_VERSION}
    old_key = hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:20]
    assert result_context(cfg, space) == result_context(cfg, space, {}) == old_key
    for runtime in ({"runtime.amp": False}, {"runtime.tf32": False}, {"runtime.deterministic": True}):
        other = load_config("mnist1d-tiny", runtime)
        assert result_context(other, space, numerics_identity(other.runtime, torch.device("cpu"))) == old_key


def test_gpu_precision_tf32_and_determinism_each_change_the_key(gpu):
    cfg = load_config("mnist1d-tiny")
    space = cfg.search_space()
    keys = {"cpu": result_context(cfg, space)}
    gpu(8)
    keys["a100"] = result_context(cfg, space, numerics_identity(cfg.runtime, CUDA))
    assert numerics_identity(cfg.runtime, CUDA) == {"device": "cuda", "precision": "bf16", "tf32": True,
                                                    "deterministic": False}
    for name, overrides in {"fp32": {"runtime.amp": False}, "no-tf32": {"runtime.tf32": False},
                            "deterministic": {"runtime.deterministic": True}}.items():
        other = load_config("mnist1d-tiny", overrides)
        keys[name] = result_context(other, space, numerics_identity(other.runtime, CUDA))
    gpu(7)  # a V100: fp16 with loss scaling, no TF32
    assert numerics_identity(cfg.runtime, CUDA)["precision"] == "fp16"
    keys["v100"] = result_context(cfg, space, numerics_identity(cfg.runtime, CUDA))
    keys["mps"] = result_context(cfg, space, numerics_identity(cfg.runtime, torch.device("mps")))
    assert len(set(keys.values())) == len(keys)


class _Backend(BackendBase):
    """Answers from a table and counts what it was asked to train."""

    def __init__(self, answers: dict[str, EvalResult]) -> None:
        self.answers, self.trained = answers, []

    def run(self, archs, on_result=None):
        self.trained += [a.text() for a in archs]
        return [self.answers[a.text()] for a in archs]

    def close(self) -> None:
        pass


def test_training_evaluator_keys_by_the_device_its_architectures_train_on(gpu, monkeypatch):
    gpu(8)
    backend = _Backend({})
    on_gpu = TrainingEvaluator(load_config("mnist1d-tiny", {"runtime.device": "cuda"}), cache=MemoryCache(),
                               backend=backend)
    cpu = load_config("mnist1d-tiny", {"runtime.device": "cpu"})
    assert on_gpu.context != TrainingEvaluator(cpu, cache=MemoryCache(), backend=backend).context
    assert on_gpu.context == result_context(on_gpu.config, on_gpu.space, numerics_identity(on_gpu.config.runtime, CUDA))
    # workers held off the GPUs train on the CPU, and their results carry the CPU's key
    monkeypatch.setattr("nas_gym.execution.gpus.visible_gpus", lambda: ["0", "1"])
    for evaluator, on_cpu in [({"evaluator.gpus_per_eval": 0}, True), ({"evaluator.workers": 2}, False),
                              ({"evaluator.backend": "ray", "evaluator.gpus_per_eval": 0}, True)]:
        workers = load_config("mnist1d-tiny", {"evaluator.backend": "process", **evaluator})
        ev = TrainingEvaluator(workers, cache=MemoryCache(), backend=backend)
        assert (ev.context == result_context(cpu, ev.space)) == on_cpu
    monkeypatch.setattr("nas_gym.execution.gpus.visible_gpus", lambda: [])  # workers that see no GPU
    ev = TrainingEvaluator(load_config("mnist1d-tiny", {"evaluator.backend": "process"}), cache=MemoryCache(),
                           backend=backend)
    assert ev.context == result_context(cpu, ev.space)


def test_out_of_memory_is_remembered_by_its_run_only(tmp_path):
    cfg = load_config("mnist1d-tiny", {"runtime.device": "cpu"})
    space = cfg.search_space()
    rng = np.random.default_rng(0)
    big, small = space.sample(rng), space.sample(rng)
    assert big.key() != small.key()
    answers = {big.text(): EvalResult.failure(big.text(), "out_of_memory", 10, 10, train_seconds=3.0),
               small.text(): EvalResult(small.text(), 0.5, 1, 1, train_seconds=1.0)}
    first = TrainingEvaluator(cfg, cache=ResultCache(tmp_path / "c.sqlite"), backend=_Backend(answers))
    assert [r.reason for r in first.evaluate_many([big, small])] == ["out_of_memory", ""]
    assert first.evaluate(big).reason == "out_of_memory"  # the same run asks again: not trained again
    assert first.backend.trained == [big.text(), small.text()] and first.stats.cache_hits == 1
    assert [e.arch for e in ResultCache(tmp_path / "c.sqlite").all()] == [small.text()]  # never shared
    second = TrainingEvaluator(cfg, cache=ResultCache(tmp_path / "c.sqlite"), backend=_Backend(answers))
    second.evaluate_many([big, small])
    assert second.backend.trained == [big.text()]  # another run (another device, other neighbours) tries again


def test_precision_is_bf16_only_where_native(gpu):
    runtime = load_config("mnist1d-tiny").runtime
    gpu(8)
    assert Runner(CUDA, runtime, image=True).precision == "bf16"
    gpu(7)
    run = Runner(CUDA, runtime, image=True)
    assert run.precision == "fp16" and run.scaler.enabled and run.amp
    assert Runner(CUDA, runtime.model_copy(update={"amp": False}), image=True).precision == "fp32"
    cpu_run = Runner(torch.device("cpu"), runtime, image=True)
    assert cpu_run.precision == "fp32" and not cpu_run.scaler.enabled and not cpu_run.channels_last


def test_loss_scaler_skips_an_overflowing_step_and_adapts_its_scale():
    p = torch.nn.Parameter(torch.ones(3))
    scaler = LossScaler(True, scale=8.0, interval=2)
    scaler.scale((p * 2.0).sum()).backward()
    assert torch.equal(p.grad, torch.full((3,), 16.0))
    assert scaler.unscale([p]) and torch.equal(p.grad, torch.full((3,), 2.0))
    p.grad = torch.tensor([1.0, float("inf"), 0.0])
    assert not scaler.unscale([p]) and scaler.value == 4.0
    for _ in range(2):
        p.grad = torch.ones(3)
        assert scaler.unscale([p])
    assert scaler.value == 8.0
    off = LossScaler(False)
    assert off.scale(torch.tensor(3.0)).item() == 3.0 and off.unscale([p])


def test_deterministic_settings_are_set_and_put_back(monkeypatch):
    monkeypatch.delenv(CUBLAS_ENV, raising=False)
    cudnn = torch.backends.cudnn
    before = (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled())
    runtime = load_config("mnist1d-tiny", {"runtime.deterministic": True}).runtime
    with numerics_settings(CUDA, runtime):
        assert not cudnn.benchmark and cudnn.deterministic and torch.are_deterministic_algorithms_enabled()
        assert os.environ[CUBLAS_ENV] == ":4096:8"
    assert (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled()) == before
    with numerics_settings(CUDA, runtime.model_copy(update={"deterministic": False})):
        assert cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()
    with numerics_settings(torch.device("cpu"), runtime):  # the CPU is deterministic already: nothing touched
        assert not torch.are_deterministic_algorithms_enabled()


def test_deterministic_pooling_replaces_the_heads_adaptive_pooling_and_computes_the_same():
    cfg = load_config("digits")
    space = cfg.search_space()
    torch.manual_seed(0)
    model = space.build_model(space.sample(np.random.default_rng(1)), cfg.input_shape, cfg.num_classes).eval()
    x = torch.randn(4, *cfg.input_shape)
    want = model(x)
    assert deterministic_pooling(model) >= 1
    assert not any(isinstance(m, torch.nn.AdaptiveAvgPool2d) for m in model.modules())
    assert any(isinstance(m, MeanPool) for m in model.modules())
    torch.testing.assert_close(model(x), want)


@pytest.mark.parametrize("device", ["cuda:abc", "cuda:", "gpu", "cuda:0:1"])
def test_malformed_device_strings_fail_in_the_config(device):
    with pytest.raises(ConfigError, match=r"runtime\.device: device .* is not one of") as info:
        load_config("mnist1d-tiny", {"runtime.device": device})
    assert "\n" not in str(info.value)


def test_a_gpu_index_beyond_the_visible_ones_fails_before_training(gpu):
    gpu(8, count=2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"only 2 CUDA device\(s\) are visible; use cuda or cuda:0 to cuda:1"):
        resolve_device("cuda:2")
    with pytest.raises(ConfigError, match=r"^runtime\.device: device 'cuda:5' requested but only 2"):
        check_setup(load_config("mnist1d-tiny", {"runtime.device": "cuda:5"}))


def test_cpu_training_leaves_cuda_generators_unseeded(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: calls.append(seed))
    torch.manual_seed(5)
    assert calls == [5]  # what torch.manual_seed does, and the trainer must not
    calls.clear()
    cfg = load_config("mnist1d-tiny", {"runtime.device": "cpu", "train.epochs": 1, "data.train_fraction": 0.05})
    data = load_dataset(cfg.data)
    space = cfg.search_space()
    result = train_mod.evaluate_seeds(space.sample(np.random.default_rng(0)), data, cfg.train, cfg.runtime, [0, 1],
                                      space=space)
    assert all(r.ok for r in result) and calls == []


def test_stacked_members_keep_channels_last(monkeypatch):
    class ChannelsLastRunner(Runner):  # what a CUDA runner decides, on the CPU
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.channels_last = True

    formats = []
    real_fit = train_mod._fit

    def fit(rw, *args, **kwargs):
        formats.extend(p.is_contiguous(memory_format=torch.channels_last) for p in rw.net.parameters() if p.dim() == 4)
        return real_fit(rw, *args, **kwargs)

    monkeypatch.setattr(train_mod, "Runner", ChannelsLastRunner)
    monkeypatch.setattr(train_mod, "_fit", fit)
    cfg = load_config("digits", {"runtime.device": "cpu", "train.epochs": 1})
    space = cfg.search_space()
    arch = space.parse("conv3-32|conv3-16")
    results = train_mod.evaluate_seeds(arch, load_dataset(cfg.data), cfg.train, cfg.runtime, [0, 1], space=space)
    assert all(r.ok for r in results)
    assert formats and all(formats)  # K=2 stacked: grouped convolutions built by the rewrite


@pytest.mark.parametrize("seeds", [[0], [0, 1]], ids=["one", "stacked"])
def test_out_of_memory_frees_after_the_except_block(monkeypatch, seeds):
    """The activations held by the failing frames are gone before the clean-up runs, so it frees them."""
    held: list[weakref.ref] = []
    freed_in_time: list[bool] = []

    def fit(rw, *args, **kwargs):
        activations = torch.empty(1000)
        held.append(weakref.ref(activations))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(train_mod, "_fit", fit)
    monkeypatch.setattr(train_mod, "free_memory", lambda device: freed_in_time.append(held[-1]() is None))
    cfg = load_config("mnist1d-tiny", {"runtime.device": "cpu", "train.epochs": 1})
    space = cfg.search_space()
    models = [space.build_model(space.parse("conv3-16"), cfg.input_shape, cfg.num_classes) for _ in seeds]
    with pytest.warns(UserWarning, match="trained one by one") if len(seeds) > 1 else _nothing():
        metrics = train_mod.train_seeds(models, load_dataset(cfg.data), cfg.train, cfg.runtime, seeds)
    assert [m.reason for m in metrics] == ["out_of_memory"] * len(seeds)
    assert freed_in_time and all(freed_in_time)  # the stacked attempt, then each member on its own


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_dead_cuda_context_is_not_an_architectures_failure(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: device-side assert triggered\nCompile with TORCH_USE_CUDA_DSA")

    monkeypatch.setattr(train_mod, "train_seeds", broken)
    cfg = load_config("mnist1d-tiny", {"runtime.device": "cpu"})
    space, data = cfg.search_space(), load_dataset(cfg.data)
    arch = space.parse("conv3-16")
    with pytest.raises(DeviceLostError, match="device-side assert"):
        train_mod.evaluate_architecture(arch, data, cfg.train, cfg.runtime, space=space)
    with pytest.raises(DeviceLostError):  # a worker lets it through (and exits)
        WorkerState(data, cfg.train, cfg.runtime, space).evaluate(arch.text())
    monkeypatch.setattr(train_mod, "train_seeds", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("CUDA error: "
                                                                                                    "invalid argument")))
    assert train_mod.evaluate_architecture(arch, data, cfg.train, cfg.runtime, space=space).reason.startswith(
        "exception: RuntimeError: CUDA error: invalid argument")  # not sticky: an ordinary failure
