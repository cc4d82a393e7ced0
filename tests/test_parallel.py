"""Backends: one batch per evaluate_many, stored and charged once; serial = process = Ray; dead workers;
workers that start with the backend, outlive its batches and serve both fidelities.

Faults are injected in real worker processes through the backends' ``worker_hook`` parameter,
which names ``fault_hook`` in this file: spawned and Ray workers do not see monkeypatches; the
folder it writes to reaches them through the environment they inherit.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from nas_gym.config import ConfigError, load_config
from nas_gym.data import load_dataset
from nas_gym.evaluators import make_evaluator, start_workers
from nas_gym.evaluators.base import EvalResult
from nas_gym.evaluators.training import SerialBackend, TrainingEvaluator, make_backend
from nas_gym.execution.backends import BackendBase
from nas_gym.execution.parallel import ProcessBackend, WorkerSetupError
from nas_gym.spaces.layer_chain.chain import Chain
from nas_gym.storage.cache import MemoryCache, ResultCache

# Trained for real on mnist1d-tiny; varied enough that a thread-count or seeding difference shows.
ARCHS = [Chain.parse(t) for t in ("conv3-32s2|conv5-16|conv3-16", "maxpool|conv3-32s2|conv3-32s2|maxpool",
                                         "avgpool|conv3-32s2", "maxpool|conv3-16|conv3-32s2|conv3-16")]
DIE_ONCE, DIE_ALWAYS, RAISES = "conv5-16|maxpool", "conv3-16|avgpool", "conv3-32|maxpool"
FAULT_DIR_ENV = "NAS_GYM_TEST_FAULT_DIR"
FAULT_HOOK = f"{__file__}:fault_hook"
EVALUATIONS = "evaluations.log"  # "<pid> <arch>" per evaluation started, written by fault_hook


def fault_hook(text: str) -> None:
    """Runs in the workers before each evaluation: notes which process evaluates what; SIGKILLs
    itself on DIE_ONCE (first attempt only) and DIE_ALWAYS (every attempt), raises on RAISES;
    counts attempts in files."""
    folder = Path(os.environ[FAULT_DIR_ENV])
    with (folder / EVALUATIONS).open("a") as f:
        f.write(f"{os.getpid()} {text}\n")
    if text not in (DIE_ONCE, DIE_ALWAYS, RAISES):
        return
    attempts = folder / (text.replace("|", "_") + ".attempts")
    with attempts.open("a") as f:
        f.write("x")
    if text == RAISES:
        raise RuntimeError("injected")
    if text == DIE_ALWAYS or attempts.read_text() == "x":
        os.kill(os.getpid(), signal.SIGKILL)


def attempts(folder: Path, text: str) -> int:
    path = folder / (text.replace("|", "_") + ".attempts")
    return len(path.read_text()) if path.exists() else 0


def evaluations(folder: Path) -> list[tuple[int, str]]:
    """(process id, architecture) of every evaluation the workers started, in order."""
    path = folder / EVALUATIONS
    lines = path.read_text().splitlines() if path.exists() else []
    return [(int(pid), text) for pid, text in (line.split(" ", 1) for line in lines)]


def config(tmp_path: Path | None = None, **evaluator):
    cache = str(tmp_path / "c.sqlite") if tmp_path else None
    return load_config("mnist1d-tiny", overrides={"evaluator.cache": cache, "runtime.device": "cpu",
                                                  **{f"evaluator.{k}": v for k, v in evaluator.items()}})


def comparable(results: Sequence[EvalResult]) -> list[tuple]:
    return [(r.arch, r.val_acc, r.train_loss, r.params, r.flops, r.status) for r in results]


# -- config and the evaluator's side, with a fake backend ------------------------------------------------
def test_backend_fields_default_validate_and_stay_out_of_the_cache_key():
    base = config()
    assert (base.evaluator.backend, base.evaluator.workers, base.evaluator.max_retries) == ("serial", 1, 2)
    tuned = config(backend="ray", workers=8, gpus_per_eval=0.25, ray_address="ray://head:10001", max_retries=0,
                   threads_per_worker=2)
    assert tuned.context_hash() == base.context_hash()
    for bad in ({"backend": "dask"}, {"workers": 0}, {"gpus_per_eval": -1}, {"max_retries": -1}):
        with pytest.raises(ConfigError, match="evaluator"):
            config(**bad)


class FakeBackend(BackendBase):
    """Records each batch; streams the first ``stream`` results, then optionally raises."""

    def __init__(self, stream: int = 0, fail: BaseException | None = None) -> None:
        self.batches: list[list[str]] = []
        self.stream, self.fail, self.closed = stream, fail, False

    def run(self, archs, on_result=None):
        self.batches.append([a.text() for a in archs])
        out = [EvalResult(arch=a.text(), val_acc=0.5, params=len(a), flops=1, train_seconds=1.0) for a in archs]
        for i in range(min(self.stream, len(out))):
            on_result(i, out[i])
            on_result(i, out[i])  # a misbehaving duplicate report is charged once
        if self.fail is not None:
            raise self.fail
        return out

    def close(self):
        self.closed = True


def test_misses_go_to_the_backend_as_one_batch_and_are_stored_and_charged_once():
    a, b, c = ARCHS[:3]
    cache = MemoryCache()
    backend = FakeBackend(stream=1)
    with TrainingEvaluator(config(), cache=cache, backend=backend) as ev:
        ev.evaluate(c)
        results = ev.evaluate_many([a, b, a, c, b])
    assert backend.batches == [[c.text()], [a.text(), b.text()]] and backend.closed
    assert [r.arch for r in results] == [x.text() for x in (a, b, a, c, b)]
    assert len(cache) == 3
    s = ev.stats
    assert (s.evaluations, s.trained, s.cache_hits, s.train_seconds) == (6, 3, 3, 3.0)


def test_a_crash_mid_batch_keeps_the_results_already_streamed():
    cache = MemoryCache()
    ev = TrainingEvaluator(config(), cache=cache, backend=FakeBackend(stream=2, fail=KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        ev.evaluate_many(ARCHS)
    assert [e.arch for e in cache.all()] == [a.text() for a in ARCHS[:2]] and ev.stats.trained == 2


def test_the_config_picks_the_backend_and_parallel_ones_start_at_once():
    assert isinstance(make_backend(config()), SerialBackend)
    with make_backend(config(backend="process", workers=3)) as process:
        # started with the backend, before any evaluation: they load while the driver goes on
        assert isinstance(process, ProcessBackend) and process.workers == 3 and len(process.pids) == 3
    assert process.pids == []
    with make_evaluator(config(backend="process")) as ev:
        assert isinstance(ev.backend, ProcessBackend) and ev._data is None  # workers load their own data
        assert ev.space == config().search_space() and ev.num_classes == 10
    fake = FakeBackend()
    assert make_evaluator(config(), backend=fake).backend is fake


def test_start_workers_starts_only_what_a_search_trains_on_and_the_driver_imports_no_torch():
    assert start_workers(config()) is None and start_workers(config(backend="process", kind="table")) is None
    code = ("import sys; from nas_gym.config import load_config; from nas_gym.evaluators import start_workers\n"
            "if __name__ == '__main__':\n"
            "    b = start_workers(load_config('mnist1d-tiny', {'evaluator.backend': 'process', 'evaluator.workers': 2}))\n"
            "    print(len(b.pids), 'torch' in sys.modules); b.close()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["2", "False"]  # workers running, and this process free to load on its own


def worker_processes() -> list[int]:
    return [p.pid for p in mp.active_children() if p.name.startswith("nas-gym-worker-")]


def test_both_fidelities_share_one_pool_of_workers():
    ev = make_evaluator(config(backend="process", workers=2, high_epochs=3))
    try:
        low, high = ev.low.backend, ev.high.backend
        assert low.pool is high.pool and sorted(low.pids) == sorted(worker_processes())
        assert len(worker_processes()) == 2  # not one pool per fidelity
        assert (low._recipe.config["train"]["epochs"], high._recipe.config["train"]["epochs"]) == (2, 3)
        assert (low._fidelity, high._fidelity) == (2.0, 3.0)
    finally:
        ev.close()
    assert worker_processes() == []


# -- real processes --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Iterator[str]:
    """MNIST-1D generated once; every worker reads the saved file instead of regenerating it."""
    root = str(tmp_path_factory.mktemp("data"))
    load_dataset(config().data.model_copy(update={"root": root}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NAS_GYM_DATA", root)  # default_root(): what data.root None resolves to, in workers too
        yield root


@pytest.fixture
def faults(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(FAULT_DIR_ENV, str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def ray_backend(tmp_path_factory, data_root):
    """One local Ray session for the Ray tests (it takes seconds to start), with faults armed."""
    pytest.importorskip("ray")
    import ray

    from nas_gym.execution.ray import RayBackend

    folder = tmp_path_factory.mktemp("ray_faults")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(FAULT_DIR_ENV, str(folder))  # local Ray workers inherit the environment of ray.init
        backend = RayBackend(config(workers=2, max_retries=1), worker_hook=FAULT_HOOK)
        assert ray.is_initialized()  # started with the backend, not at its first batch
        yield backend, folder
        backend.close()
    assert not ray.is_initialized()  # it started Ray, so it shut it down


@pytest.mark.slow
def test_serial_process_and_ray_give_identical_results(data_root, ray_backend):
    with TrainingEvaluator(config(), cache=MemoryCache()) as serial:
        expected = comparable(serial.evaluate_many(ARCHS))
    assert all(status == "ok" for *_, status in expected)
    with TrainingEvaluator(config(backend="process", workers=2), cache=MemoryCache()) as ev:
        assert comparable(ev.evaluate_many(ARCHS)) == expected
    backend = ray_backend[0]
    actors = backend.pids
    ev = TrainingEvaluator(config(), cache=MemoryCache(), backend=backend)
    assert comparable(ev.evaluate_many(ARCHS)) == expected
    # an evaluator with another trainer budget trains it on the same actors (as the high fidelity does)
    longer = load_config(config(), {"train.epochs": 3})
    with TrainingEvaluator(longer, cache=MemoryCache()) as serial:
        expected_longer = comparable(serial.evaluate_many(ARCHS[:2]))
    assert expected_longer != expected[:2]
    ev = TrainingEvaluator(longer, cache=MemoryCache(), backend=backend)
    assert comparable(ev.evaluate_many(ARCHS[:2])) == expected_longer
    assert backend.pids == actors  # long-lived actors: the same processes for every batch and budget


def fidelities(**evaluator):
    """Multi-fidelity on mnist1d-tiny at 1 and 2 epochs; half the architectures seen get promoted."""
    return load_config("mnist1d-tiny", overrides={
        "train.epochs": 1, "evaluator.cache": None, "runtime.device": "cpu", "evaluator.high_epochs": 2,
        "evaluator.promote_top": 0.5, **{f"evaluator.{k}": v for k, v in evaluator.items()}})


def run_fidelities(ev, batches) -> tuple[list, list]:
    """Low results per batch, then the promoted architectures' high results."""
    low = [comparable(ev.evaluate_many(batch)) for batch in batches]
    return low, [comparable([e.high]) for e in ev.leaderboard() if e.high is not None]


@pytest.mark.slow
def test_both_fidelities_train_on_one_warm_pool_as_serial_would(data_root, faults):
    batches = [ARCHS[:2], ARCHS[2:]]
    serial = make_evaluator(fidelities(), cache=MemoryCache())
    expected = run_fidelities(serial, batches)
    serial.close()
    pooled = fidelities(backend="process", workers=2)
    ev = make_evaluator(pooled, cache=MemoryCache(), backend=ProcessBackend(pooled, worker_hook=FAULT_HOOK))
    try:
        started = sorted(ev.low.backend.pids)
        assert len(started) == 2  # alive before the first evaluation
        first, _ = run_fidelities(ev, batches[:1])
        assert sorted(ev.low.backend.pids) == started  # the same processes after a batch...
        second, high = run_fidelities(ev, batches[1:])
        assert sorted(ev.low.backend.pids) == started  # ...and the next
        promoted = [e.high for e in ev.leaderboard() if e.high is not None]
    finally:
        ev.close()
    assert (first + second, high) == expected and all(r.fidelity == 2.0 for r in promoted)
    # one pool served both fidelities: every evaluation ran in one of the two first workers
    pids = [pid for pid, _ in evaluations(faults)]
    assert len(pids) == len(ARCHS) + len(promoted) == ev.stats.trained and set(pids) <= set(started)


@pytest.mark.slow
def test_a_search_trains_on_the_workers_started_for_it_and_stops_them(tmp_path, data_root, faults):
    from nas_gym.runs.search import run_search

    cfg = load_config(config(tmp_path, backend="process", workers=2), {"train.epochs": 1})
    backend = ProcessBackend(cfg, worker_hook=FAULT_HOOK)  # what start_workers(cfg) starts, faults armed
    started = set(backend.pids)
    summary = run_search(cfg, "random", 4, 0, tmp_path / "runs", backend=backend)
    assert summary.stats.trained == 4 and backend.pids == []  # closed with the search's evaluator
    assert len(started) == 2 and {pid for pid, _ in evaluations(faults)} <= started


@pytest.mark.slow
def test_process_backend_survives_dead_workers(tmp_path, data_root, faults):
    batch = [ARCHS[2], Chain.parse(DIE_ONCE), Chain.parse(DIE_ALWAYS), Chain.parse(RAISES)]
    cfg = config(tmp_path, backend="process", workers=2, max_retries=1)
    with TrainingEvaluator(cfg, backend=ProcessBackend(cfg, worker_hook=FAULT_HOOK)) as ev:
        results = {r.arch: r for r in ev.evaluate_many(batch)}
        pids = ev.backend.pids
        assert ev.evaluate(ARCHS[3]).ok and set(pids) <= set(ev.backend.pids)  # live workers outlive a batch
    assert results[ARCHS[2].text()].ok and results[DIE_ONCE].ok
    assert results[DIE_ALWAYS].reason.startswith("worker_died: ") and "SIGKILL" in results[DIE_ALWAYS].reason
    assert results[RAISES].reason == "exception: RuntimeError: injected"
    assert (attempts(faults, DIE_ONCE), attempts(faults, DIE_ALWAYS), attempts(faults, RAISES)) == (2, 2, 1)
    assert len({pid for pid, text in evaluations(faults) if text == DIE_ONCE}) == 2  # retried by a new worker
    stored = sorted(e.arch for e in ResultCache(tmp_path / "c.sqlite").all())
    # each exactly once; a dead worker or an exception says nothing about the architecture: not stored
    assert stored == sorted([ARCHS[2].text(), DIE_ONCE, ARCHS[3].text()])
    assert (ev.stats.trained, ev.stats.failures) == (5, 2)
    assert all(not os.path.exists(f"/proc/{pid}") for pid in pids)  # close() stopped them


@pytest.mark.slow
def test_a_worker_that_cannot_load_the_data_raises_and_caches_nothing(tmp_path):
    cfg = load_config("cifar10", overrides={"data.root": str(tmp_path / "nothing"), "evaluator.cache": None,
                                            "evaluator.backend": "process", "runtime.device": "cpu"})
    with TrainingEvaluator(cfg) as ev, pytest.raises(WorkerSetupError, match="could not start.*cifar10"):
        ev.evaluate(Chain.parse("conv3-64"))
    assert len(ev.cache) == 0 and ev.stats.evaluations == 0


@pytest.mark.slow
def test_ray_backend_retries_dead_workers_and_records_the_rest(tmp_path, ray_backend):
    backend, folder = ray_backend
    batch = [ARCHS[2], Chain.parse(DIE_ONCE), Chain.parse(DIE_ALWAYS)]
    ev = TrainingEvaluator(config(tmp_path), backend=backend)
    results = {r.arch: r for r in ev.evaluate_many(batch)}
    assert results[ARCHS[2].text()].ok and results[DIE_ONCE].ok
    assert results[DIE_ALWAYS].reason.startswith("worker_died: ")
    assert (attempts(folder, DIE_ONCE), attempts(folder, DIE_ALWAYS)) == (2, 2)
    assert len({pid for pid, text in evaluations(folder) if text == DIE_ONCE}) == 2  # retried on a new actor
    assert len(backend.pids) == 2  # the dead actors were replaced
    assert sorted(e.arch for e in ev.cache.all()) == sorted([ARCHS[2].text(), DIE_ONCE])  # the dead one is not stored
    assert (ev.stats.trained, ev.stats.failures) == (3, 1)
