"""A pool of worker processes on this host that trains the architectures of one batch in parallel.

Why it is built this way rather than on ``ProcessPoolExecutor``:

* When a worker dies (SIGKILL, the kernel's OOM killer), an executor breaks and fails *every*
  pending future, so it cannot say which architecture killed it. Here each worker runs one
  architecture at a time and the driver watches each worker's pipe and process sentinel, so a
  death is charged to exactly the architecture that was running, the worker alone is restarted,
  and the others keep going. After ``max_retries`` deaths an architecture becomes a failed
  result ``worker_died: <detail>`` (a network that gets OOM-killed would be killed again).
* Workers are started with **spawn**, never fork: torch's thread pools, CUDA and the SQLite
  cache do not survive a fork. Each worker loads the dataset once, sets its torch threads once
  and keeps them for every architecture it trains, and on a multi-GPU host takes its own GPU.
* Workers live as long as the backend, not one batch: an env steps one architecture at a time,
  and a worker's start (interpreter, torch, dataset) costs seconds.
* Workers ignore SIGINT, so Ctrl-C reaches only the driver, which stops them; a worker never
  turns an interrupt into a failed result that would then be cached.

Workers only compute; the driver stores results (``TrainingEvaluator``). Test-only fault
injection: ``NAS_GYM_WORKER_HOOK=path/to/file.py:function`` (or ``module:function``) in a
worker's environment names a function called with the architecture text before each evaluation.
"""

from __future__ import annotations

import importlib
import importlib.util
import multiprocessing as mp
import os
import signal
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for
from typing import Any

import torch

from nas_gym import train as _train
from nas_gym.config import Config, RuntimeConfig, TrainConfig
from nas_gym.data import Dataset, load_dataset
from nas_gym.evaluators.base import EvalResult
from nas_gym.spaces.base import Architecture, SearchSpace

HOOK_ENV = "NAS_GYM_WORKER_HOOK"
_STOP_SECONDS = 5.0  # a worker gets this long to exit cleanly before it is killed

OnResult = Callable[[int, EvalResult], None]


class WorkerSetupError(RuntimeError):
    """A worker could not start (no dataset, no device): a setup error, not a result to cache."""


# -- the worker side (also used by the Ray backend) -------------------------------------------
def load_hook(spec: str | None) -> Callable[[str], Any] | None:
    """``"file.py:function"`` or ``"module:function"`` -> the function; None or empty -> None."""
    if not spec:
        return None
    where, _, name = spec.rpartition(":")
    if where.endswith(".py"):
        module_spec = importlib.util.spec_from_file_location("_nas_gym_worker_hook", where)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"{HOOK_ENV}: cannot load {where}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    return getattr(module, name)


def worker_device(device: str, index: int) -> str:
    """Worker ``index`` takes GPU ``index % device_count`` unless the config pins one."""
    resolved = _train.resolve_device(device)
    count = torch.cuda.device_count() if resolved.type == "cuda" else 0
    if count > 1 and device in ("auto", "cuda"):
        return f"cuda:{index % count}"
    return str(resolved)


@dataclass(frozen=True)
class WorkerState:
    """What a worker keeps between architectures: the dataset on its device and the recipe."""

    data: Dataset
    train: TrainConfig
    runtime: RuntimeConfig
    space: SearchSpace
    hook: Callable[[str], Any] | None = None

    def evaluate(self, text: str) -> EvalResult:
        """Never raises: whatever goes wrong with one architecture is its failed result."""
        try:
            if self.hook is not None:
                self.hook(text)
            return _train.evaluate_architecture(self.space.parse(text), self.data, self.train, self.runtime,
                                                space=self.space)
        except Exception as e:  # noqa: BLE001 - one bad architecture must not end a search
            return EvalResult.failure(text, f"exception: {type(e).__name__}: {e}", fidelity=float(self.train.epochs))


def setup_worker(config: Config, threads: int, device: str, data: Dataset | None = None) -> WorkerState:
    """Fix the thread count for the life of the worker and put the dataset on its device.

    The runtime's ``threads`` is overridden too, because the trainer sets threads per run.
    """
    torch.set_num_threads(threads)
    # The first optimizer step imports torch._dynamo (over a second here); doing it now keeps
    # that out of the first architecture's train_seconds, which the budget is charged with.
    importlib.import_module("torch._dynamo")

    runtime = config.runtime.model_copy(update={"device": device, "threads": threads})
    data = (load_dataset(config.data) if data is None else data).to(device)
    return WorkerState(data, config.train, runtime, config.search_space(data.input_shape),
                       load_hook(os.environ.get(HOOK_ENV)))


def _worker_main(conn: Connection, config_json: dict[str, Any], threads: int, index: int) -> None:
    """A worker's life: set up once, then answer ``(i, text)`` with ``("result", i, EvalResult)``
    until it reads None or the driver goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        config = Config.model_validate(config_json)
        state = setup_worker(config, threads, worker_device(config.runtime.device, index))
    except Exception as e:  # noqa: BLE001 - reported to the driver, which raises it
        conn.send(("setup_error", -1, f"{type(e).__name__}: {e}"))
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message is None:
            break
        i, text = message
        conn.send(("result", i, state.evaluate(text)))
    # Nothing to flush (results went through the pipe), and a normal interpreter exit with torch
    # loaded takes over a second per worker.
    os._exit(0)


# -- the driver side ---------------------------------------------------------------------------
class _Worker:
    """One worker process, the driver's end of its pipe and the batch index it is running."""

    def __init__(self, ctx: Any, index: int, config_json: dict[str, Any], threads: int) -> None:
        self.index = index
        self.task: int | None = None
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, config_json, threads, index),
                                   name=f"nas-gym-worker-{index}", daemon=True)
        self.process.start()
        child.close()  # so the driver sees EOF when the worker dies

    def receive(self) -> tuple[str, int, Any] | None:
        """The worker's message, or None if it died without one."""
        try:
            if self.conn.poll():
                return self.conn.recv()
        except (EOFError, OSError):
            pass
        return None

    def death(self) -> str:
        """Reap a dead (or mute) worker, release its pipe and say how it ended."""
        self.conn.close()
        self.process.join(_STOP_SECONDS)
        code = self.process.exitcode
        if code is None:
            self.process.kill()
            self.process.join()
            return f"worker {self.process.pid} closed its pipe and was killed"
        if code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        return f"worker {self.process.pid} {how}"

    def ask_to_stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass

    def stop(self, graceful: bool) -> None:
        if graceful and self.process.is_alive():
            self.ask_to_stop()
            self.process.join(_STOP_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class ProcessBackend:
    """Trains a batch on ``workers`` spawned processes; see the module docstring for the why.

    :param config: the preset; each worker loads ``config.data`` and trains with ``config.train``
        on ``config.runtime.device`` (worker i on GPU i % count when there are several).
    :param workers: default ``config.evaluator.workers``.
    :param threads_per_worker: torch threads in each worker; default ``config.evaluator.threads_per_worker``.
    :param max_retries: retries of an architecture whose worker died; default ``config.evaluator.max_retries``.
    """

    def __init__(self, config: Config, workers: int | None = None, threads_per_worker: int | None = None,
                 max_retries: int | None = None) -> None:
        ev = config.evaluator
        self.workers = ev.workers if workers is None else workers
        self.threads = ev.threads_per_worker if threads_per_worker is None else threads_per_worker
        self.max_retries = ev.max_retries if max_retries is None else max_retries
        if self.workers < 1 or self.threads < 1 or self.max_retries < 0:
            raise ValueError("workers and threads_per_worker must be >= 1, max_retries >= 0")
        self._config_json = config.model_dump(mode="json")
        self._fidelity = float(config.train.epochs)
        self._ctx = mp.get_context("spawn")
        self._slots: list[_Worker | None] = [None] * self.workers

    def __repr__(self) -> str:
        return f"ProcessBackend(workers={self.workers}, threads_per_worker={self.threads})"

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring, and for tests that kill one)."""
        return [w.process.pid for w in self._slots if w is not None and w.process.is_alive() and w.process.pid]

    def _worker(self, index: int) -> _Worker:
        """Slot ``index``'s worker, started (or restarted after a death) on demand."""
        w = self._slots[index]
        if w is None or not w.process.is_alive():
            if w is not None:
                w.stop(graceful=False)
            w = self._slots[index] = _Worker(self._ctx, index, self._config_json, self.threads)
        return w

    def _dispatch(self, queue: deque[int], texts: list[str]) -> None:
        for index in range(self.workers):
            if not queue:
                return
            current = self._slots[index]
            if current is not None and current.task is not None:
                continue
            w = self._worker(index)
            i = queue.popleft()
            try:
                w.conn.send((i, texts[i]))
                w.task = i
            except OSError:  # died between jobs: not this architecture's fault
                queue.appendleft(i)
                w.stop(graceful=False)
                self._slots[index] = None

    def run(self, archs: Sequence[Architecture], on_result: OnResult | None = None) -> list[EvalResult]:
        """Results aligned with ``archs``; ``on_result`` is called in this thread as each arrives.

        :raises WorkerSetupError: a worker could not load the data or use the device.
        """
        texts = [a.text() for a in archs]
        results: list[EvalResult | None] = [None] * len(texts)
        deaths = [0] * len(texts)
        queue = deque(range(len(texts)))
        try:
            while True:
                self._dispatch(queue, texts)
                busy = [w for w in self._slots if w is not None and w.task is not None]
                if not busy:
                    break
                ready = set(wait_for([w.conn for w in busy] + [w.process.sentinel for w in busy]))
                for w in busy:
                    if w.conn not in ready and w.process.sentinel not in ready:
                        continue
                    i, message = w.task, w.receive()
                    assert i is not None
                    if message is not None and message[0] == "setup_error":
                        raise WorkerSetupError(f"worker {w.index} could not start: {message[2]}")
                    if message is not None and message[1] == i:
                        w.task, results[i] = None, message[2]
                    else:
                        detail = w.death()
                        w.task, self._slots[w.index] = None, None
                        deaths[i] += 1
                        if deaths[i] <= self.max_retries:
                            queue.appendleft(i)
                            continue
                        results[i] = EvalResult.failure(
                            texts[i], f"worker_died: {detail} ({deaths[i]} attempts)", fidelity=self._fidelity)
                    if on_result is not None:
                        on_result(i, results[i])
        except BaseException:
            # Ctrl-C, a setup error or a failing cache: the unfinished work is abandoned, and
            # the workers restart on the next batch rather than finish stale architectures.
            self._stop_all(graceful=False)
            raise
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _stop_all(self, graceful: bool) -> None:
        if graceful:  # all at once, then wait
            for w in self._slots:
                if w is not None:
                    w.ask_to_stop()
        for index, w in enumerate(self._slots):
            if w is not None:
                w.stop(graceful)
                self._slots[index] = None

    def close(self) -> None:
        """Stop every worker; the backend starts new ones if used again."""
        self._stop_all(graceful=True)

    def __enter__(self) -> ProcessBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
