"""Long-lived Ray actors that train the architectures of a search, on this host or on a Ray cluster.

One actor per worker (``num_cpus=1``, ``num_gpus=gpus_per_eval``: one GPU each by default when the
cluster has GPUs and the device may use them, fractions let several small networks share a GPU;
a request the cluster cannot meet fails before any actor is made). Each actor sets its torch threads and loads the dataset once, when it is
created (``nas_gym.execution.worker``), then trains one architecture at a time for as long as the
backend lives: a search pays Ray's start and the data loading once, not once per task. Ray and
the actors start when the backend is made, so the actors load while the driver builds its env and
agent; the first batch waits for them.

The driver hands an actor its next architecture when it returns the last one (the slowest
network of a batch never holds others in an actor's queue). When an actor dies (killed, out of
memory, its node lost), its architecture is retried on a new actor in its place, up to
``max_retries`` times, then becomes a failed result ``worker_died: ...``; an exception inside
training is already a failed result. Actors only compute: the driver stores each result once, as
it arrives. Each task carries its training settings (``Recipe``), so ``with_config`` gives the
other fidelity of a multi-fidelity search a backend on the same actors.

This module is named after the package it wraps; the ``from __future__`` line and absolute
imports keep ``import ray`` meaning the real Ray.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import ray
import ray.exceptions

from nas_gym.config import Config, ConfigError
from nas_gym.execution.gpus import check_request, gpus_per_worker
from nas_gym.execution.parallel import DEVICE_LOST_EXIT, PooledBackend, WorkerSetupError
from nas_gym.execution.recipe import Recipe
from nas_gym.results import EvalResult

OnResult = Callable[[int, EvalResult], None]


def _one_line(error: BaseException) -> str:
    first = str(error).strip().splitlines()
    return f"{type(error).__name__}: {first[0] if first else ''}".rstrip(": ")


def cluster_gpus_per_worker(device: str, workers: int, requested: float | None, resources: dict[str, float]) -> float:
    """The GPUs each actor asks Ray for, checked against the cluster's (``ray.cluster_resources()``)
    before any actor is made: actors asking for GPUs that do not exist would never start, and
    their tasks would wait forever.

    :raises ConfigError: the request does not fit the cluster, or contradicts the device.
    """
    available = int(resources.get("GPU", 0))
    per_worker = gpus_per_worker(device, requested, available)
    check_request(workers, per_worker, available, "the Ray cluster")
    return per_worker


class _Trainer:
    """The actor: one worker for the backend's life. A string answer is a setup error."""

    def __init__(self, config_json: dict[str, Any], threads: int, hook: str | None = None) -> None:
        try:
            from nas_gym.execution.worker import WorkerTrainer, worker_device

            config = Config.model_validate(config_json)
            device = config.runtime.device
            # An actor only sees the GPUs Ray gave it (Ray sets CUDA_VISIBLE_DEVICES), its own as
            # cuda:0 whatever index the config named; ``auto`` without one means the CPU.
            if device.startswith("cuda"):
                device = "cuda"
            device = "cpu" if device == "auto" and not ray.get_gpu_ids() else worker_device(device, 0)
            self.trainer: Any = WorkerTrainer(config, threads, device, hook)
            self.error: str | None = None
        except Exception as e:  # noqa: BLE001 - a setup error, reported to the driver
            self.trainer, self.error = None, _one_line(e)

    def pid(self) -> int:
        return os.getpid()

    def evaluate(self, text: str, recipe: Recipe) -> EvalResult | str:
        if self.error is not None:
            return self.error
        try:
            state = self.trainer.state(recipe)
        except Exception as e:  # noqa: BLE001 - another recipe's data: a setup error too
            return _one_line(e)
        from nas_gym.training.numerics import DeviceLostError

        try:
            return state.evaluate(text)
        except DeviceLostError:
            os._exit(DEVICE_LOST_EXIT)  # the driver sees the actor die and retries on a new one


class ActorPool:
    """``workers`` actors, created at once; Ray is started first if it is not running.

    Locally Ray starts with ``num_cpus=workers`` (no dashboard, worker logs not forwarded), or
    joins ``address``; if Ray is already initialised in this process, that session is used.
    ``close`` shuts Ray down only if this pool started it.
    """

    def __init__(self, config: Config, workers: int, address: str | None, gpus_per_eval: float | None,
                 max_retries: int, threads: int, hook: str | None = None) -> None:
        self.workers, self.address, self.requested_gpus = workers, address, gpus_per_eval
        self.hook = hook
        self.gpus_per_eval = 0.0  # made definite by ``start``, from the cluster's GPUs
        self._device = config.runtime.device
        self.max_retries, self.threads = max_retries, threads
        self._config_json = config.model_dump(mode="json")
        self._started_ray = False
        self._actor_class: Any = None
        self._actors: list[Any] = [None] * workers
        self.start()

    def start(self) -> None:
        """Start Ray and every missing actor without waiting for them (``run`` waits for results)."""
        if not ray.is_initialized():
            quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
            if self.address:
                ray.init(address=self.address, **quiet)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, **quiet)
            self._started_ray = True
        if self._actor_class is None:
            try:
                self.gpus_per_eval = cluster_gpus_per_worker(self._device, self.workers, self.requested_gpus,
                                                             ray.cluster_resources())
            except ConfigError:
                self.close()  # nothing started but Ray itself
                raise
            # Retries are the driver's (below), so Ray restarts nothing by itself.
            self._actor_class = ray.remote(_Trainer).options(num_cpus=1, num_gpus=self.gpus_per_eval,
                                                             max_restarts=0, max_task_retries=0)
        for slot in range(self.workers):
            if self._actors[slot] is None:
                self._actors[slot] = self._actor_class.remote(self._config_json, self.threads, self.hook)

    @property
    def pids(self) -> list[int]:
        """Process ids of the actors (waits until they have started)."""
        return ray.get([a.pid.remote() for a in self._actors if a is not None])

    def _kill(self, slot: int) -> None:
        actor, self._actors[slot] = self._actors[slot], None
        if actor is not None:
            try:
                ray.kill(actor, no_restart=True)
            except ray.exceptions.RayError:
                pass  # already gone

    def _failure(self, text: str, error: BaseException, fidelity: float, attempts: int) -> EvalResult:
        if isinstance(error, ray.exceptions.RayActorError):
            reason = f"worker_died: {_one_line(error)} ({attempts} attempts)"
        elif isinstance(error, ray.exceptions.RayTaskError):
            reason = f"exception: {_one_line(error.cause) if error.cause else _one_line(error)}"
        else:
            reason = f"ray_error: {_one_line(error)}"
        return EvalResult.failure(text, reason, fidelity=fidelity)

    def run(self, tasks: Sequence[tuple[str, Recipe]], fidelities: Sequence[float],
            on_result: OnResult | None = None) -> list[EvalResult]:
        """Results aligned with ``tasks`` (architecture text, recipe); ``on_result`` is called in
        this thread as each arrives. ``fidelities`` label the failures of actors that kept dying.

        :raises WorkerSetupError: an actor could not load the data or use the device.
        """
        self.start()
        results: list[EvalResult | None] = [None] * len(tasks)
        deaths = [0] * len(tasks)
        queue = deque(range(len(tasks)))
        idle = deque(range(self.workers))
        running: dict[Any, tuple[int, int]] = {}  # object ref -> (slot, task index)
        try:
            while queue or running:
                while queue and idle:
                    slot, i = idle.popleft(), queue.popleft()
                    running[self._actors[slot].evaluate.remote(*tasks[i])] = (slot, i)
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    slot, i = running.pop(ref)
                    try:
                        value = ray.get(ref)
                    except ray.exceptions.RayActorError as e:
                        self._kill(slot)  # dead: a new actor takes its place
                        self.start()
                        deaths[i] += 1
                        if deaths[i] <= self.max_retries:
                            queue.appendleft(i)
                            idle.append(slot)
                            continue
                        value = self._failure(tasks[i][0], e, fidelities[i], deaths[i])
                    except ray.exceptions.RayError as e:
                        value = self._failure(tasks[i][0], e, fidelities[i], deaths[i] + 1)
                    if isinstance(value, str):
                        raise WorkerSetupError(f"Ray actor could not start: {value}")
                    idle.append(slot)
                    results[i] = value
                    if on_result is not None:
                        on_result(i, value)
        except BaseException:
            # Ctrl-C, a setup error or a failing cache: stop paying for the rest; the actors
            # that were busy are replaced on the next batch rather than finish stale work.
            for slot, _ in running.values():
                self._kill(slot)
            raise
        return results  # type: ignore[return-value]

    def close(self) -> None:
        """Kill the actors, and shut Ray down if this pool started it; ``run`` starts again."""
        for slot in range(self.workers):
            self._kill(slot)
        if self._started_ray and ray.is_initialized():
            ray.shutdown()
        self._started_ray, self._actor_class = False, None


class RayBackend(PooledBackend):
    """Trains batches on an ``ActorPool``, started at once; see the module docstring for the why.

    :param config: the preset; its ``evaluator`` section gives the defaults of the other arguments.
    :param worker_hook: ``file.py:function`` or ``module:function`` every actor calls with the
        architecture text before training it (tests inject faults with it); None: nothing.
    """

    def __init__(self, config: Config, workers: int | None = None, address: str | None = None,
                 gpus_per_eval: float | None = None, max_retries: int | None = None,
                 threads_per_worker: int | None = None, worker_hook: str | None = None) -> None:
        ev = config.evaluator
        super().__init__(ActorPool(config, ev.workers if workers is None else workers,
                                   ev.ray_address if address is None else address,
                                   ev.gpus_per_eval if gpus_per_eval is None else gpus_per_eval,
                                   ev.max_retries if max_retries is None else max_retries,
                                   ev.threads_per_worker if threads_per_worker is None else threads_per_worker,
                                   worker_hook), config)

    def __repr__(self) -> str:
        where = self.pool.address or f"local, {self.workers} CPUs"
        return f"RayBackend({where}, {self.workers} actors, gpus_per_eval={self.pool.gpus_per_eval})"
