"""A pool of worker processes on this host that trains the architectures of a search in parallel.

Why it is built this way rather than on ``ProcessPoolExecutor``:

* When a worker dies (SIGKILL, the kernel's OOM killer), an executor breaks and fails *every*
  pending future, so it cannot say which architecture killed it. Here each worker runs one
  architecture at a time and the driver watches each worker's pipe and process sentinel, so a
  death is charged to exactly the architecture that was running, the worker alone is restarted,
  and the others keep going. After ``max_retries`` deaths an architecture becomes a failed
  result ``worker_died: <detail>`` (a network that gets OOM-killed would be killed again).
* Workers are started with **spawn**, never fork: torch's thread pools, CUDA and the SQLite
  cache do not survive a fork. Each worker sets its torch threads once, loads the dataset once
  and keeps both for every architecture it trains (``nas_gym.execution.worker``), and on a
  multi-GPU host takes its own GPU.
* Workers start when the backend is made, not at the first batch: starting one (interpreter,
  torch, dataset) costs seconds, which then overlap with whatever the driver does before its
  first evaluation (building the env and the agent). Readiness is awaited only by the first
  batch. Workers then live as long as the backend: a search's batches all go to the same ones.
* Each task carries its training settings (``Recipe``), so one pool serves several budgets:
  ``with_config`` gives a backend for another config on the same workers, which is how the two
  fidelities of a multi-fidelity search share one pool.
* Workers ignore SIGINT, so Ctrl-C reaches only the driver, which stops them; a worker never
  turns an interrupt into a failed result that would then be cached.

Workers only compute; the driver stores results (``TrainingEvaluator``). This module imports no
torch: only the workers need it. Fault injection for tests: ``ProcessBackend(worker_hook=...)``.
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import os
import signal
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for
from typing import Any, TypeVar

from nas_gym.config import Config
from nas_gym.errors import NasGymError
from nas_gym.execution.gpus import VISIBLE_ENV, worker_gpus
from nas_gym.execution.lifeline import die_with_parent
from nas_gym.execution.recipe import Recipe
from nas_gym.results import EvalResult
from nas_gym.spaces.base import Architecture

_STOP_SECONDS = 5.0  # an idle worker gets this long to exit cleanly before it is killed
DEVICE_LOST_EXIT = 75  # a worker's exit code when its CUDA context died (``nas_gym.training.numerics.DeviceLostError``)

OnResult = Callable[[int, EvalResult], None]


class WorkerSetupError(NasGymError, RuntimeError):
    """A worker could not start (no dataset, no device): a setup error, not a result to cache."""


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0]


# -- the worker side -------------------------------------------------------------------------------
def _worker_main(conn: Connection, config_json: dict[str, Any], threads: int, index: int, parent: int,
                 gpu: str | None = None, hook: str | None = None) -> None:
    """A worker's life: set up once and say ``("ready", -1, pid)``, then answer ``(i, text, recipe)``
    with ``("result", i, EvalResult)`` until it reads None or the driver goes away.

    ``gpu``: this worker's ``CUDA_VISIBLE_DEVICES`` (see ``nas_gym.gpus.worker_gpus``), set before
    CUDA starts, so the worker sees its own GPU only, as ``cuda:0``; None leaves it alone. A worker
    whose CUDA context dies exits with :data:`DEVICE_LOST_EXIT`, so the pool replaces it and retries
    the architecture in a fresh process.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)  # a driver killed with SIGKILL takes its workers with it
    if gpu is not None:
        os.environ[VISIBLE_ENV] = gpu
    try:
        from nas_gym.execution.worker import WorkerTrainer, worker_device  # torch: in the worker only
        from nas_gym.training.numerics import DeviceLostError

        config = Config.model_validate(config_json)
        device = config.runtime.device
        if gpu and device.startswith("cuda"):
            device = "cuda"  # its one visible GPU, whatever index the config pinned
        trainer = WorkerTrainer(config, threads, worker_device(device, index), hook)
    except Exception as e:  # noqa: BLE001 - reported to the driver, which raises it
        conn.send(("setup_error", -1, _one_line(e)))
        return
    conn.send(("ready", -1, os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message is None:
            break
        i, text, recipe = message
        try:
            state = trainer.state(recipe)
        except Exception as e:  # noqa: BLE001 - another recipe's data or space: a setup error too
            conn.send(("setup_error", i, _one_line(e)))
            break
        try:
            result = state.evaluate(text)
        except DeviceLostError:
            os._exit(DEVICE_LOST_EXIT)  # no result: the driver sees a death and retries on a fresh worker
        conn.send(("result", i, result))
    # Nothing to flush (results went through the pipe), and a normal interpreter exit with torch
    # loaded takes over a second per worker.
    os._exit(0)


# -- the driver side -------------------------------------------------------------------------------
class _Worker:
    """One worker process, the driver's end of its pipe, and the task it is running."""

    def __init__(self, ctx: Any, index: int, config_json: dict[str, Any], threads: int, gpu: str | None = None,
                 hook: str | None = None) -> None:
        self.index = index
        self.task: int | None = None
        self.ready = False  # its "ready" message has been read
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, config_json, threads, index, os.getpid(), gpu, hook),
                                   name=f"nas-gym-worker-{index}", daemon=True)
        self.process.start()
        child.close()  # so the driver sees EOF when the worker dies

    def receive(self) -> tuple[str, int, Any] | None:
        """The worker's next message, or None if there is none (it may have died without one)."""
        try:
            if self.conn.poll():
                return self.conn.recv()
        except (EOFError, OSError):
            pass
        return None

    def read_setup_error(self) -> str | None:
        """Read what is waiting in the pipe: note a "ready", return a setup error if the worker sent one."""
        while (message := self.receive()) is not None:
            if message[0] == "ready":
                self.ready = True
            elif message[0] == "setup_error":
                return message[2]
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
        elif code == DEVICE_LOST_EXIT:
            how = "exited: its CUDA context died (device-side error)"
        else:
            how = f"exited with code {code}"
        return f"worker {self.process.pid} {how}"

    def ask_to_stop(self) -> bool:
        """Ask an idle, ready worker to exit; False for one still starting, busy or gone (it is
        killed instead: a worker holds nothing that could be lost, results go through the pipe)."""
        if self.conn.closed or self.read_setup_error() is not None:
            return False
        if not (self.ready and self.task is None and self.process.is_alive()):
            return False
        try:
            self.conn.send(None)
        except OSError:
            return False
        return True

    def stop(self, asked: bool) -> None:
        """Wait for a worker that was asked to exit, kill it if it does not (or was not asked)."""
        if asked:
            self.process.join(_STOP_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class WorkerPool:
    """``workers`` spawned processes, started at once; see the module docstring for the why."""

    def __init__(self, config: Config, workers: int, threads: int, max_retries: int, hook: str | None = None) -> None:
        if workers < 1 or threads < 1 or max_retries < 0:
            raise ValueError("workers and threads_per_worker must be >= 1, max_retries >= 0")
        self.workers, self.threads, self.max_retries, self.hook = workers, threads, max_retries, hook
        self._config_json = config.model_dump(mode="json")
        # Checked and planned before any worker starts: a request for GPUs that are not there fails here.
        self.gpus = worker_gpus(config.runtime.device, workers, config.evaluator.gpus_per_eval)
        self._ctx = mp.get_context("spawn")
        self._slots: list[_Worker | None] = [None] * workers
        self.start()

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring, and for tests that kill one)."""
        return [w.process.pid for w in self._slots if w is not None and w.process.is_alive() and w.process.pid]

    def start(self) -> None:
        """Start every missing worker without waiting for it (``run`` waits for results, not readiness)."""
        for index in range(self.workers):
            self._worker(index)

    def _worker(self, index: int) -> _Worker:
        """Slot ``index``'s worker, started (or restarted after a death) on demand.

        :raises WorkerSetupError: the dead worker had said why it could not start.
        """
        w = self._slots[index]
        if w is None or not w.process.is_alive():
            if w is not None:
                error = w.read_setup_error()
                w.stop(asked=False)
                self._slots[index] = None
                if error is not None:
                    raise WorkerSetupError(f"worker {index} could not start: {error}")
            gpu = None if self.gpus is None else self.gpus[index]
            w = self._slots[index] = _Worker(self._ctx, index, self._config_json, self.threads, gpu, self.hook)
        return w

    def _dispatch(self, queue: deque[int], tasks: Sequence[tuple[str, Recipe]]) -> None:
        for index in range(self.workers):
            if not queue:
                return
            current = self._slots[index]
            if current is not None and current.task is not None:
                continue
            w = self._worker(index)
            i = queue.popleft()
            try:
                w.conn.send((i, *tasks[i]))
                w.task = i
            except OSError:  # died between jobs: not this architecture's fault
                queue.appendleft(i)
                error = w.read_setup_error()
                w.stop(asked=False)
                self._slots[index] = None
                if error is not None:
                    raise WorkerSetupError(f"worker {index} could not start: {error}") from None

    def run(self, tasks: Sequence[tuple[str, Recipe]], fidelities: Sequence[float],
            on_result: OnResult | None = None) -> list[EvalResult]:
        """Results aligned with ``tasks`` (architecture text, recipe); ``on_result`` is called in
        this thread as each arrives. ``fidelities`` label the failures of workers that kept dying.

        :raises WorkerSetupError: a worker could not load the data or use the device.
        """
        results: list[EvalResult | None] = [None] * len(tasks)
        deaths = [0] * len(tasks)
        queue = deque(range(len(tasks)))
        try:
            while True:
                self._dispatch(queue, tasks)
                busy = [w for w in self._slots if w is not None and w.task is not None]
                if not busy:
                    break
                ready = set(wait_for([w.conn for w in busy] + [w.process.sentinel for w in busy]))
                for w in busy:
                    if w.conn not in ready and w.process.sentinel not in ready:
                        continue
                    i, message = w.task, w.receive()
                    assert i is not None
                    if message is not None and message[0] == "ready":
                        w.ready = True  # its result is still to come
                        continue
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
                        results[i] = EvalResult.failure(tasks[i][0], f"worker_died: {detail} ({deaths[i]} attempts)",
                                                        fidelity=fidelities[i])
                    if on_result is not None:
                        on_result(i, results[i])
        except BaseException:
            # Ctrl-C, a setup error or a failing cache: the unfinished work is abandoned, and
            # the workers restart on the next batch rather than finish stale architectures.
            self.close(graceful=False)
            raise
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def close(self, graceful: bool = True) -> None:
        """Stop every worker (idle ones are asked to exit, all at once); ``run`` starts new ones."""
        live = [w for w in self._slots if w is not None]
        self._slots = [None] * self.workers
        asked = [graceful and w.ask_to_stop() for w in live]
        for w, was_asked in zip(live, asked, strict=True):
            w.stop(was_asked)


_B = TypeVar("_B", bound="PooledBackend")


class PooledBackend:
    """What the process and Ray backends share: a pool of long-lived workers (``run(tasks,
    fidelities, on_result)``, ``close()``, ``workers``, ``pids``), and the recipe this backend's
    tasks carry, so that ``with_config`` can put another budget on the same workers. Subclasses
    build the pool."""

    def __init__(self, pool: Any, config: Config) -> None:
        self.pool = pool
        self._recipe = Recipe.of(config)
        self._fidelity = float(config.train.epochs)

    @property
    def workers(self) -> int:
        return self.pool.workers

    @property
    def pids(self) -> list[int]:
        return self.pool.pids

    def with_config(self: _B, config: Config) -> _B:
        """A backend training with ``config``'s data, trainer and space on these same workers
        (their device and threads stay this backend's). Closing either closes the shared pool."""
        shared = copy.copy(self)
        shared._recipe, shared._fidelity = Recipe.of(config), float(config.train.epochs)
        return shared

    def run(self, archs: Sequence[Architecture], on_result: OnResult | None = None) -> list[EvalResult]:
        """Results aligned with ``archs``; ``on_result`` is called in this thread as each arrives.

        :raises WorkerSetupError: a worker could not load the data or use the device.
        """
        if not archs:
            return []
        return self.pool.run([(a.text(), self._recipe) for a in archs], [self._fidelity] * len(archs), on_result)

    def close(self) -> None:
        """Stop every worker of the pool; the backend starts new ones if used again."""
        self.pool.close()

    def __enter__(self: _B) -> _B:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProcessBackend(PooledBackend):
    """Trains batches on a ``WorkerPool`` of ``workers`` spawned processes, started at once.

    :param config: the preset; each worker loads ``config.data`` at start and trains with
        ``config.train`` on ``config.runtime.device``; on GPUs each worker sees only its own
        (``evaluator.gpus_per_eval``, ``nas_gym.gpus.worker_gpus``).
    :raises ConfigError: more GPUs asked for than there are (before any worker starts).
    :param workers: default ``config.evaluator.workers``.
    :param threads_per_worker: torch threads in each worker; default ``config.evaluator.threads_per_worker``.
    :param max_retries: retries of an architecture whose worker died; default ``config.evaluator.max_retries``.
    :param worker_hook: ``file.py:function`` or ``module:function`` every worker calls with the
        architecture text before training it (tests inject faults with it); None: nothing.
    """

    def __init__(self, config: Config, workers: int | None = None, threads_per_worker: int | None = None,
                 max_retries: int | None = None, worker_hook: str | None = None) -> None:
        ev = config.evaluator
        super().__init__(WorkerPool(config, ev.workers if workers is None else workers,
                                    ev.threads_per_worker if threads_per_worker is None else threads_per_worker,
                                    ev.max_retries if max_retries is None else max_retries, worker_hook), config)

    @property
    def threads(self) -> int:
        return self.pool.threads

    @property
    def max_retries(self) -> int:
        return self.pool.max_retries

    def __repr__(self) -> str:
        return f"ProcessBackend(workers={self.workers}, threads_per_worker={self.threads})"
