"""The worker side of the process and Ray backends: what one worker keeps for its whole life.

A worker (a spawned process, or a Ray actor) fixes its torch threads and device once, loads its
dataset once, and then trains whatever tasks it is sent. A task names its training settings as a
``Recipe`` (see ``nas_gym.execution.recipe``), so one set of workers serves several trainer
budgets, such as the two fidelities of a multi-fidelity search: each distinct dataset setting is
loaded once and kept, and a recipe that only changes the epochs reuses the copy already loaded.

This module imports torch; the driver never imports it (a driver using workers does not need
torch before its first result), only the workers do.

Fault injection for tests: a backend's ``worker_hook`` (``path/to/file.py:function`` or
``module:function``, a declared parameter of ``ProcessBackend`` and ``RayBackend``) names a
function each worker calls with the architecture text before each evaluation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from nas_gym import plugins
from nas_gym.config import Config, RuntimeConfig, TrainConfig
from nas_gym.data import Dataset, load_dataset
from nas_gym.execution.recipe import Recipe
from nas_gym.results import EvalResult
from nas_gym.spaces.base import SearchSpace
from nas_gym.training import train as _train
from nas_gym.training.numerics import CUBLAS_DETERMINISTIC, CUBLAS_ENV, DeviceLostError, is_device_lost


def load_hook(spec: str | None) -> Callable[[str], Any] | None:
    """``"file.py:function"`` or ``"module:function"`` -> the function (``nas_gym.plugins``); None or empty -> None."""
    return plugins.load_target(spec, "worker hook") if spec else None


def worker_device(device: str, index: int) -> str:
    """Worker ``index`` takes GPU ``index % device_count`` unless the config pins one."""
    resolved = _train.resolve_device(device)
    count = torch.cuda.device_count() if resolved.type == "cuda" else 0
    if count > 1 and device in ("auto", "cuda"):
        return f"cuda:{index % count}"
    return str(resolved)


@dataclass(frozen=True)
class WorkerState:
    """One recipe in one worker: the dataset on the worker's device, the trainer budget, the space."""

    data: Dataset
    train: TrainConfig
    runtime: RuntimeConfig
    space: SearchSpace
    hook: Callable[[str], Any] | None = None

    def evaluate(self, text: str) -> EvalResult:
        """Whatever goes wrong with one architecture is its failed result, except a dead CUDA
        context: that raises ``DeviceLostError`` (and the worker exits)."""
        try:
            if self.hook is not None:
                self.hook(text)
            return _train.evaluate_architecture(self.space.parse(text), self.data, self.train, self.runtime,
                                                space=self.space)
        except Exception as e:  # noqa: BLE001 - one bad architecture must not end a search
            if is_device_lost(e):  # the process is done for: the pool retries on a fresh one
                raise DeviceLostError(str(e)) from e
            return EvalResult.failure(text, f"exception: {type(e).__name__}: {e}", fidelity=float(self.train.epochs))


class WorkerTrainer:
    """Everything a worker sets up once; built when the worker starts, before any task arrives.

    The thread count is fixed for the worker's life (the runtime's ``threads`` is overridden
    too, because the trainer sets threads per run), and the dataset of ``config`` is loaded at
    once, so a missing dataset is a setup error of the worker rather than of an architecture.

    :param config: the config the pool was made for; its runtime says where this worker trains.
    :param threads: torch CPU threads.
    :param device: this worker's device (see ``worker_device``).
    :param hook: ``file.py:function`` or ``module:function`` called with each architecture's text
        before it trains (tests inject faults with it); None: nothing.
    """

    def __init__(self, config: Config, threads: int, device: str, hook: str | None = None) -> None:
        torch.set_num_threads(threads)
        if config.runtime.deterministic:  # before this process first uses cuBLAS, which reads it once
            os.environ.setdefault(CUBLAS_ENV, CUBLAS_DETERMINISTIC)
        self.runtime = config.runtime.model_copy(update={"device": device, "threads": threads})
        self.hook = load_hook(hook)
        self._data: dict[str, Dataset] = {}
        self._states: dict[str, WorkerState] = {}
        self.state(Recipe.of(config))

    def state(self, recipe: Recipe) -> WorkerState:
        """The recipe's setup, made on first use; raises what a bad dataset or space raises."""
        state = self._states.get(recipe.key)
        if state is None:
            config = Config.model_validate(recipe.config)
            data_key = json.dumps(recipe.config["data"], sort_keys=True)
            if data_key not in self._data:
                self._data[data_key] = load_dataset(config.data).to(self.runtime.device)
            data = self._data[data_key]
            state = self._states[recipe.key] = WorkerState(data, config.train, self.runtime,
                                                           config.search_space(data.input_shape), self.hook)
        return state
