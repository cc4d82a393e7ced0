"""Ray tasks that train the architectures of one batch, on this host or on a Ray cluster.

One task per architecture, ``num_cpus=1`` and ``num_gpus=gpus_per_eval`` (fractions let several
small networks share a GPU). Ray retries a task whose worker process died (``max_retries``,
set explicitly: a task killed by Ray's memory monitor would otherwise retry forever) and never
retries a Python exception (``retry_exceptions=False``; the trainer already turns those into
failed results). A task that still fails comes back as a failed result with the reason, so a
search never stops on a crashed worker. A task may run twice, so it only computes: the driver
stores each result as ``ray.wait`` hands it over, and the cache keeps the first one.

Each Ray worker process loads the dataset once (a module-level memo keyed by the data config)
and sets its torch threads. This module is named after the package it wraps; the
``from __future__`` line and absolute imports keep ``import ray`` meaning the real Ray.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import ray
import ray.exceptions

from nas_gym.config import Config
from nas_gym.data import Dataset, load_dataset
from nas_gym.evaluators.base import EvalResult
from nas_gym.evaluators.parallel import WorkerSetupError, setup_worker, worker_device
from nas_gym.spaces.base import Architecture

OnResult = Callable[[int, EvalResult], None]

# In a Ray worker process: (data config JSON, device) -> the dataset on that device. A worker
# runs many tasks, and reloading the data for each would cost more than training a tiny network.
_DATA: dict[tuple[str, str], Dataset] = {}

# Errors that mean the task never produced an answer because its process or node went away.
_DIED = (ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError, ray.exceptions.OwnerDiedError,
         ray.exceptions.NodeDiedError, ray.exceptions.OutOfMemoryError, ray.exceptions.LocalRayletDiedError)


def _task_device(device: str) -> str:
    """A task only touches the GPUs Ray gave it; ``auto`` without one means the CPU."""
    gpu_ids = ray.get_gpu_ids()
    if device == "auto" and not gpu_ids:
        return "cpu"
    return worker_device(device, 0)  # Ray's CUDA_VISIBLE_DEVICES already picked the GPU


def _evaluate_task(config_json: dict[str, Any], text: str, threads: int) -> EvalResult | str:
    """Runs in a Ray worker; a string return is a setup error the driver raises."""
    try:
        config = Config.model_validate(config_json)
        device = _task_device(config.runtime.device)
        key = (json.dumps(config_json["data"], sort_keys=True), device)
        if key not in _DATA:
            _DATA[key] = load_dataset(config.data).to(device)
        state = setup_worker(config, threads, device, data=_DATA[key])
    except Exception as e:  # noqa: BLE001 - a setup error, reported to the driver
        return f"{type(e).__name__}: {e}"
    return state.evaluate(text)


def _one_line(error: BaseException) -> str:
    first = str(error).strip().splitlines()
    return f"{type(error).__name__}: {first[0] if first else ''}".rstrip(": ")


class RayBackend:
    """Trains a batch as Ray tasks, collecting results as they finish.

    Ray starts on the first batch: locally with ``num_cpus=workers`` (no dashboard, worker logs
    not forwarded), or joined to ``ray_address``; if Ray is already initialised in this process,
    that session is used. ``close`` shuts Ray down only if this backend started it.

    :param config: the preset; its ``evaluator`` section gives the defaults of the other arguments.
    """

    def __init__(self, config: Config, workers: int | None = None, address: str | None = None,
                 gpus_per_eval: float | None = None, max_retries: int | None = None,
                 threads_per_worker: int | None = None) -> None:
        ev = config.evaluator
        self.workers = ev.workers if workers is None else workers
        self.address = ev.ray_address if address is None else address
        self.gpus_per_eval = ev.gpus_per_eval if gpus_per_eval is None else gpus_per_eval
        self.max_retries = ev.max_retries if max_retries is None else max_retries
        self.threads = ev.threads_per_worker if threads_per_worker is None else threads_per_worker
        self._config_json = config.model_dump(mode="json")
        self._fidelity = float(config.train.epochs)
        self._started = False
        self._remote: Any = None

    def __repr__(self) -> str:
        where = self.address or f"local, {self.workers} CPUs"
        return f"RayBackend({where}, gpus_per_eval={self.gpus_per_eval})"

    def _start(self) -> None:
        if not ray.is_initialized():
            quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
            if self.address:
                ray.init(address=self.address, **quiet)
            else:  # local workers inherit this environment, NAS_GYM_WORKER_HOOK included
                ray.init(num_cpus=self.workers, include_dashboard=False, **quiet)
            self._started = True
        if self._remote is None:
            self._remote = ray.remote(_evaluate_task).options(
                num_cpus=1, num_gpus=self.gpus_per_eval, max_retries=self.max_retries, retry_exceptions=False)

    def _failure(self, text: str, error: BaseException) -> EvalResult:
        if isinstance(error, _DIED):
            reason = f"worker_died: {_one_line(error)} (after {self.max_retries} retries)"
        elif isinstance(error, ray.exceptions.RayTaskError):
            reason = f"exception: {_one_line(error.cause) if error.cause else _one_line(error)}"
        else:
            reason = f"ray_error: {_one_line(error)}"
        return EvalResult.failure(text, reason, fidelity=self._fidelity)

    def run(self, archs: Sequence[Architecture], on_result: OnResult | None = None) -> list[EvalResult]:
        """Results aligned with ``archs``; ``on_result`` is called in this thread as each arrives.

        :raises WorkerSetupError: a worker could not load the data or use the device.
        """
        if not archs:
            return []
        self._start()
        texts = [a.text() for a in archs]
        config_ref = ray.put(self._config_json)  # once per batch, not once per task
        pending = {self._remote.remote(config_ref, text, self.threads): i for i, text in enumerate(texts)}
        results: list[EvalResult | None] = [None] * len(texts)
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i = pending.pop(ref)
                    try:
                        value = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        value = self._failure(texts[i], e)
                    if isinstance(value, str):
                        raise WorkerSetupError(f"Ray worker could not start: {value}")
                    results[i] = value
                    if on_result is not None:
                        on_result(i, value)
        except BaseException:
            for ref in pending:  # Ctrl-C, a setup error or a failing cache: stop paying for the rest
                ray.cancel(ref, force=True)
            raise
        return results  # type: ignore[return-value]

    def close(self) -> None:
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started, self._remote = False, None

    def __enter__(self) -> RayBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
