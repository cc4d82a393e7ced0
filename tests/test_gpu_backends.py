"""Workers on GPUs, checked on a CPU: the GPU plan of the process pool, Ray's request against a
fake cluster description, a worker with a dead CUDA context replaced and its architecture retried,
``compare --workers`` dealing out GPUs, checkpoints mapped to the CPU first, the one-shot loops'
memory, and the run folder's ``runtime.json``."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import gymnasium as gym
import pytest
import torch

import nas_gym.execution.gpus as gpus_mod
import nas_gym.oneshot.memory as memory_mod
from nas_gym.agents.base import AgentError
from nas_gym.agents.darts import Darts
from nas_gym.agents.enas import Enas
from nas_gym.config import ConfigError, load_config
from nas_gym.evaluators.base import EvalResult
from nas_gym.evaluators.supernet import SupernetEvaluator
from nas_gym.evaluators.synthetic import SyntheticEvaluator
from nas_gym.evaluators.training import TrainingEvaluator
from nas_gym.execution.gpus import VISIBLE_ENV, claim_gpu, visible_gpus, worker_gpus
from nas_gym.execution.parallel import ProcessBackend
from nas_gym.runs.compare import _one_thread
from nas_gym.runs.runlog import RUNTIME_JSON
from nas_gym.runs.search import write_run_files
from nas_gym.storage.cache import MemoryCache

DIR_ENV = "NAS_GYM_TEST_GPU_DIR"
LOSES_CONTEXT = "conv5-16|maxpool"


def device_hook(text: str) -> None:
    """In the workers: notes the GPU each one sees; kills the CUDA context (as a device-side
    assert does) on LOSES_CONTEXT's first attempt."""
    folder = Path(os.environ[DIR_ENV])
    with (folder / "seen.log").open("a") as f:
        f.write(f"{os.getpid()} {os.environ.get(VISIBLE_ENV)} {text}\n")
    marker = folder / "lost"
    if text == LOSES_CONTEXT and not marker.exists():
        marker.write_text("x")
        raise RuntimeError("CUDA error: device-side assert triggered")


# -- the GPU plan ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("device", "visible", "workers", "requested", "plan"), [
    ("cpu", ["0", "1"], 2, None, None),
    ("auto", ["0", "1"], 2, None, ["0", "1"]),
    ("auto", [], 2, None, ["", ""]),
    ("auto", ["0", "1"], 2, 0.0, ["", ""]),
    ("cuda", ["0", "1"], 4, 0.5, ["0", "0", "1", "1"]),
    ("cuda:1", ["3", "5"], 2, 0.5, ["5", "5"]),
], ids=["cpu", "one-each", "no-gpu", "held-off", "two-per-gpu", "pinned"])
def test_each_worker_gets_its_own_gpu(device, visible, workers, requested, plan):
    assert worker_gpus(device, workers, requested, visible) == plan


@pytest.mark.parametrize(("device", "visible", "workers", "requested", "message"), [
    ("cuda", ["0"], 2, None, r"evaluator\.workers 2 at gpus_per_eval 1 need 2 GPU\(s\) but this host has 1"),
    ("cuda", ["0", "1"], 5, 0.5, r"need 3 GPU\(s\) but this host has 2"),
    ("cuda:0", ["0", "1"], 2, None, r"need 2 GPU\(s\) but cuda:0 \(one GPU\) has 1"),
    ("cuda:2", ["0", "1"], 1, None, r"runtime\.device 'cuda:2': only 2 GPU\(s\) are visible"),
    ("cuda", ["0"], 1, 0.0, r"gpus_per_eval is 0 but runtime\.device is 'cuda'"),
    ("cpu", ["0"], 1, 1.0, r"gpus_per_eval is 1 but runtime\.device is 'cpu'"),
], ids=["too-many", "too-many-packed", "pinned-too-many", "no-such-gpu", "cuda-without-gpus", "cpu-with-gpus"])
def test_a_request_that_cannot_be_met_is_one_line(device, visible, workers, requested, message):
    with pytest.raises(ConfigError, match=message) as info:
        worker_gpus(device, workers, requested, visible)
    assert "\n" not in str(info.value)


def test_visible_gpus_read_cuda_visible_devices(monkeypatch):
    for spec, ids in [("1,3", ["1", "3"]), ("", []), ("0,-1,2", ["0"]), ("GPU-ab12, GPU-cd34", ["GPU-ab12", "GPU-cd34"])]:
        monkeypatch.setenv(VISIBLE_ENV, spec)
        assert visible_gpus() == ids
    monkeypatch.delenv(VISIBLE_ENV)
    monkeypatch.setattr(gpus_mod.shutil, "which", lambda name: None)
    assert visible_gpus() == []


def test_the_process_pool_refuses_before_starting_any_worker(monkeypatch):
    monkeypatch.setattr(gpus_mod, "visible_gpus", lambda: ["0"])
    monkeypatch.setattr(mp.get_context("spawn"), "Process", lambda *a, **k: pytest.fail("a worker was started"))
    with pytest.raises(ConfigError, match=r"need 2 GPU\(s\) but this host has 1; lower evaluator\.workers"):
        ProcessBackend(load_config("mnist1d-tiny", {"evaluator.backend": "process", "evaluator.workers": 2,
                                                    "runtime.device": "cuda"}))


def test_the_search_command_refuses_an_impossible_gpu_request_before_a_run_folder(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from nas_gym.cli import app

    monkeypatch.setattr(gpus_mod, "visible_gpus", lambda: ["0"])
    result = CliRunner().invoke(app, ["search", "--config", "mnist1d-tiny", "--backend", "process", "--workers", "2",
                                      "--episodes", "2", "--logdir", str(tmp_path / "runs"),
                                      "--set", f"evaluator.cache={tmp_path / 'c.sqlite'}"])
    assert result.exit_code == 2
    assert "need 2 GPU(s) but this host has 1" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() and not (tmp_path / "c.sqlite").exists()


@pytest.mark.slow
def test_workers_see_their_own_gpu_and_a_dead_context_is_retried_on_a_fresh_worker(tmp_path, monkeypatch):
    """Real spawned workers: each is started with its GPU's CUDA_VISIBLE_DEVICES (fake ids: on a
    CPU host they then train on the CPU), and the one whose context dies exits; the pool starts a
    new one and the architecture trains there."""
    monkeypatch.setattr(gpus_mod, "visible_gpus", lambda: ["7", "9"])
    monkeypatch.setenv(DIR_ENV, str(tmp_path))
    cfg = load_config("mnist1d-tiny", {"evaluator.backend": "process", "evaluator.workers": 2, "train.epochs": 1,
                                       "runtime.device": "auto", "evaluator.max_retries": 1})
    texts = [LOSES_CONTEXT, "conv3-16", "avgpool|conv3-16"]
    backend = ProcessBackend(cfg, worker_hook=f"{__file__}:device_hook")
    with TrainingEvaluator(cfg, cache=MemoryCache(), backend=backend) as ev:
        assert ev.backend.pool.gpus == ["7", "9"]
        results = ev.evaluate_many([ev.space.parse(t) for t in texts])
    assert [r.status for r in results] == ["ok"] * 3
    seen = [line.split(" ", 2) for line in (tmp_path / "seen.log").read_text().splitlines()]
    gpu_of = {pid: gpu for pid, gpu, _ in seen}
    assert len(set(gpu_of.values())) == 2 and set(gpu_of.values()) <= {"7", "9"}
    attempts = [(pid, text) for pid, _, text in seen if text == LOSES_CONTEXT]
    assert len(attempts) == 2 and attempts[0][0] != attempts[1][0]  # retried in another process


# -- Ray, against a fake cluster description ----------------------------------------------------------
def test_ray_request_is_checked_against_the_cluster_before_any_actor(monkeypatch):
    ray = pytest.importorskip("ray")
    import nas_gym.execution.ray as ray_mod

    assert ray_mod.cluster_gpus_per_worker("auto", 2, None, {"CPU": 8.0}) == 0.0
    assert ray_mod.cluster_gpus_per_worker("auto", 2, None, {"CPU": 8.0, "GPU": 2.0}) == 1.0
    assert ray_mod.cluster_gpus_per_worker("cuda", 4, 0.5, {"GPU": 2.0}) == 0.5
    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: bool(calls) and calls[-1] == "init")
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append("init"))
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0, "GPU": 1.0})
    monkeypatch.setattr(ray, "remote", lambda *a, **k: pytest.fail("an actor class was made"))
    cfg = load_config("mnist1d-tiny", {"evaluator.backend": "ray", "evaluator.workers": 3, "runtime.device": "cuda"})
    with pytest.raises(ConfigError, match=r"need 3 GPU\(s\) but the Ray cluster has 1"):
        ray_mod.RayBackend(cfg)
    assert calls == ["init", "shutdown"]  # it started Ray, so it stopped it


# -- compare --workers ----------------------------------------------------------------------------------
def test_parallel_runs_are_dealt_the_gpus_in_turn(monkeypatch):
    monkeypatch.setenv(VISIBLE_ENV, "unchanged")
    counter = mp.get_context("spawn").Value("i", 0)
    assert [claim_gpu(counter, ["0", "1"]) for _ in range(3)] == ["0", "1", "0"]
    threads = torch.get_num_threads()
    try:
        _one_thread(counter=counter, gpus=["0", "1"])  # the initialiser of compare's worker processes
        assert os.environ[VISIBLE_ENV] == "1" and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


# -- checkpoints and the one-shot loops ----------------------------------------------------------------
def one_shot_env(**overrides) -> gym.Env:
    cfg = load_config("mnist1d-cell", {"data.train_fraction": 0.1, "runtime.device": "cpu", **overrides})
    return gym.make("NasGym/LayerChain-v0", config=cfg, evaluator=SyntheticEvaluator(cfg.search_space()))


@pytest.fixture
def load_spy(monkeypatch):
    real, seen = torch.load, []

    def spy(*args, **kwargs):
        seen.append(kwargs.get("map_location"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    return seen


@pytest.mark.parametrize("agent_cls", [Darts, Enas], ids=["darts", "enas"])
def test_resume_maps_the_checkpoint_to_the_cpu_first(tmp_path, load_spy, agent_cls):
    """The agent's device is set to ``meta``, a non-CPU device type: mapping the checkpoint there
    (as ``map_location=<device>`` did) breaks ``Generator.set_state``, which needs a CPU tensor."""
    hparams = {"shared_steps": 2, "controller_steps": 3} if agent_cls is Enas else None
    first = agent_cls(one_shot_env(), seed=3, hparams=hparams)
    first.learn(1)
    first.save(tmp_path / "agent.pt")
    resumed = agent_cls(one_shot_env(), seed=3, hparams=hparams)
    resumed.setup.device = torch.device("meta")
    resumed.load(tmp_path / "agent.pt")
    assert load_spy == ["cpu"]
    for a, b in zip(resumed.setup.net.parameters(), first.setup.net.parameters(), strict=True):
        assert a.device.type == "cpu"
        torch.testing.assert_close(a, b)


def test_the_stored_supernet_loads_to_the_cpu_first(tmp_path, load_spy):
    cfg = load_config("mnist1d-cell", {"data.train_fraction": 0.05, "runtime.device": "cpu",
                                       "evaluator.supernet_epochs": 1, "evaluator.cache": str(tmp_path / "c.sqlite")})
    first = SupernetEvaluator(cfg)
    first.supernet()
    again = SupernetEvaluator(cfg)
    torch.testing.assert_close(again.supernet().state_dict(), first.net.state_dict())
    assert load_spy == ["cpu"]  # the first evaluator found no file and trained


def test_one_shot_batches_keep_the_preset_where_it_fits_and_shrink_where_not(monkeypatch):
    env = one_shot_env()
    measured = []
    real = memory_mod.bytes_per_sample
    monkeypatch.setattr(memory_mod, "bytes_per_sample", lambda loss: measured.append(real(loss)) or measured[-1])
    assert Darts(env, seed=0).batch_size == env.unwrapped.config.train.batch_size == 64  # MNIST-1D: fits
    assert Darts(env, seed=0, hparams={"batch_size": 16}).batch_size == 16
    monkeypatch.setattr(memory_mod, "memory_budget", lambda device: int(measured[0] * 20))
    assert Darts(env, seed=0).batch_size == 16  # the largest power of two under 20 samples' worth
    monkeypatch.setattr(memory_mod, "memory_budget", lambda device: 1)
    assert Enas(env, seed=0).batch_size == memory_mod.MIN_BATCH


def test_running_out_of_memory_in_a_one_shot_loop_is_one_line(monkeypatch, tmp_path):
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    agent = Darts(one_shot_env(), seed=0)
    monkeypatch.setattr(agent, "_step", oom)
    with pytest.raises(AgentError, match=r"^darts ran out of memory on cpu at batch 64; pass a smaller one, e\.g\. "
                                         r"--hparams '\{batch_size: 32\}'$"):
        agent.learn(1)
    monkeypatch.setattr("nas_gym.oneshot.training.PathTrainer.step", oom)
    cfg = load_config("mnist1d-cell", {"data.train_fraction": 0.05, "runtime.device": "cpu",
                                       "evaluator.supernet_epochs": 1, "evaluator.cache": None})
    with pytest.raises(ConfigError, match=r"^supernet training ran out of memory on cpu at batch 64; set "
                                          r"evaluator\.supernet_batch_size lower \(e\.g\. 32\)$"):
        SupernetEvaluator(cfg).supernet()


def test_one_shot_batches_copy_indices_to_the_device_once_per_pass(monkeypatch):
    """A host-to-GPU copy waits for the GPU: once per pass, not once per batch."""
    from nas_gym.oneshot.training import BatchStream

    stream = BatchStream(torch.arange(40.0)[:, None], torch.arange(40), 8, seed=0)
    copies, real_to = [], torch.Tensor.to
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *a, **k: copies.append(1) or real_to(self, *a, **k))
    seen = torch.cat([stream.next()[1] for _ in range(10)])  # two passes of five batches
    assert len(copies) == 1  # the second pass's permutation
    assert sorted(seen[:40].tolist()) == list(range(40)) and sorted(seen[40:].tolist()) == list(range(40))


def test_latency_is_timed_while_no_worker_trains(monkeypatch):
    import nas_gym.evaluators.training as training_mod
    from nas_gym.execution.backends import BackendBase

    class Busy(BackendBase):
        busy = False

        def run(self, archs, on_result=None):
            Busy.busy = True
            out = [EvalResult(a.text(), 0.5, 1, 1) for a in archs]
            Busy.busy = False
            return out

        def close(self):
            pass

    timed_while_busy = []
    monkeypatch.setattr(training_mod._train, "measure_latency",
                        lambda *a, **k: timed_while_busy.append(Busy.busy) or 1.0)
    cfg = load_config("mnist1d-tiny", {"runtime.device": "cpu", "reward.cost": "latency"})
    ev = TrainingEvaluator(cfg, cache=MemoryCache(), backend=Busy())
    ev.evaluate_many([ev.space.parse(t) for t in ("conv3-16", "avgpool|conv3-16")])
    assert timed_while_busy == [False, False]


# -- the run folder ---------------------------------------------------------------------------------------
def test_run_folders_record_where_each_start_trained(tmp_path, monkeypatch):
    cfg = load_config("mnist1d-tiny", {"runtime.device": "cpu"})
    write_run_files(tmp_path, cfg, ["nas-gym", "search"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA A100-SXM4-40GB")
    write_run_files(tmp_path, load_config("mnist1d-tiny", {"runtime.device": "cuda"}), ["nas-gym", "search"],
                    resume=True)
    first, resumed = json.loads((tmp_path / RUNTIME_JSON).read_text())
    assert (first["device"], first["precision"], first["deterministic"]) == ("cpu", "fp32", False)
    assert (resumed["device"], resumed["gpu"], resumed["precision"], resumed["tf32"]) == (
        "cuda:0", "NVIDIA A100-SXM4-40GB", "bf16", True)
    assert {"cuda", "cudnn", "capability", "torch"} <= resumed.keys()
    assert (resumed["backend"], resumed["workers"], resumed["gpus_per_eval"]) == ("serial", 1, None)


def test_fitting_batch_is_a_power_of_two_at_least_two():
    def loss(n: int) -> torch.Tensor:  # 4 KiB kept per sample (one float32 activation of 1,024 values)
        w = torch.ones(1024, requires_grad=True)
        return (torch.ones(n, 1024) * w).relu().sum()

    per = memory_mod.bytes_per_sample(loss)
    assert per >= 4096
    device = torch.device("cpu")
    assert memory_mod.fitting_batch(loss, 64, device, budget=int(per * 100)) == 64
    assert memory_mod.fitting_batch(loss, 64, device, budget=int(per * 40)) == 32
    assert memory_mod.fitting_batch(loss, 64, device, budget=int(per * 0.5)) == 2
    assert memory_mod.fitting_batch([loss, lambda n: loss(4 * n)], 64, device, budget=int(per * 100)) == 16
