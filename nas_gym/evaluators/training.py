"""The evaluator that really trains: cache first, then a backend that trains the misses.

It is the one place where the budget is charged for real training, so agents that drive the
env and agents that call the evaluator directly pay the same way (``self.stats``). The misses
of one ``evaluate_many`` call go to a backend as one batch: in this process (``SerialBackend``),
to a pool of worker processes (``nas_gym.execution.parallel``) or to Ray tasks
(``nas_gym.execution.ray``). Backends only compute; the evaluator alone writes the cache and
charges the budget, so a result computed twice (a retried task) is still stored and charged once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch

from nas_gym.config import Config, ConfigError, RuntimeConfig, TrainConfig
from nas_gym.data import Dataset, load_dataset
from nas_gym.evaluator_kinds import lookup
from nas_gym.evaluators.base import OUT_OF_MEMORY, EvalResult, EvalStats, EvaluatorBase
from nas_gym.execution.backends import Backend, BackendBase, OnResult, parallel_backend
from nas_gym.spaces.base import Architecture, SearchSpace
from nas_gym.storage.cache import Cache, ResultCache, open_cache, result_context
from nas_gym.training import train as _train


class SerialBackend(BackendBase):
    """Trains one architecture after another in this process, on data already on the device.

    Looks ``evaluate_architecture`` up on the module at every call, so tests can replace it.
    """

    def __init__(self, data: Dataset, train: TrainConfig, runtime: RuntimeConfig, space: SearchSpace) -> None:
        self.data, self.train, self.runtime, self.space = data, train, runtime, space

    def run(self, archs: Sequence[Architecture], on_result: OnResult | None = None) -> list[EvalResult]:
        out = []
        for i, arch in enumerate(archs):
            result = _train.evaluate_architecture(arch, self.data, self.train, self.runtime, space=self.space)
            if on_result is not None:
                on_result(i, result)
            out.append(result)
        return out

    def with_config(self, config: Config) -> SerialBackend:
        """``config``'s trainer and space on this backend's data, already on the device.

        :raises ConfigError: ``config`` names other data.
        """
        if config.data.name != self.data.name:
            raise ConfigError(f"data.name is {config.data.name!r} but this serial backend holds {self.data.name!r}; "
                              "make the backend from the same data")
        return SerialBackend(self.data, config.train, config.runtime, config.search_space(self.data.input_shape))

    def __repr__(self) -> str:
        return "SerialBackend()"


def make_backend(config: Config, data: Dataset | None = None) -> Backend:
    """The backend ``config.evaluator.backend`` names; the parallel ones start their workers now,
    so the workers load while the caller goes on (see ``nas_gym.evaluators.start_workers``).

    :param data: for ``serial`` only (worker processes load their own copy from ``config.data``).
    :raises ConfigError: ``ray`` is asked for but not installed.
    """

    backend = parallel_backend(config)
    if backend is not None:
        return backend
    if data is None:
        data = load_dataset(config.data).to(_train.resolve_device(config.runtime.device))
    return SerialBackend(data, config.train, config.runtime, config.search_space(data.input_shape))


def check_setup(config: Config) -> None:
    """Raise, read-only, the one-line error that bad setup would raise later in a search.

    ``run_search`` creates its run folder before the evaluator exists, and the process and Ray
    backends load the data only inside their workers, where a missing dataset shows up as a
    crashed worker. So a command checks first: the device, the cache file and the data (loaded
    once more, then dropped: about a second for CIFAR-10, nothing next to a search), and the
    workers' GPU request against the GPUs there are.
    Evaluators that need neither data nor cache (table, synthetic) pass at once.

    :raises ConfigError, CacheError, DatasetError: one line naming the problem and the fix.
    """
    kind = config.evaluator.kind
    if not lookup(kind).loads_data:
        return
    try:
        _train.resolve_device(config.runtime.device)
    except ValueError as e:
        raise ConfigError(f"runtime.device: {e}") from None
    if kind == "train":
        check_gpus(config)
    if kind == "train" and config.evaluator.cache is not None:
        ResultCache.check(config.evaluator.cache)
    load_dataset(config.data)


def check_gpus(config: Config) -> None:
    """Raise the one-line error the workers' GPU request would raise when they start
    (``nas_gym.execution.gpus``); a remote Ray cluster's GPUs are only known once joined, and are checked then."""
    from nas_gym.execution.gpus import check_request, gpus_per_worker, visible_gpus, worker_gpus

    ev, device = config.evaluator, config.runtime.device
    if ev.backend == "process":
        worker_gpus(device, ev.workers, ev.gpus_per_eval)
    elif ev.backend == "ray" and ev.ray_address is None:
        available = len(visible_gpus())
        check_request(ev.workers, gpus_per_worker(device, ev.gpus_per_eval, available), available, "this host")


class TrainingEvaluator(EvaluatorBase):
    """Scores architectures by training them with the config's recipe, caching every result.

    Failures that belong to the architecture (NaN loss, too many parameters) are cached too,
    with their reason: training is seeded, so the same architecture under the same context
    would fail again, and retraining it would only charge the budget twice for the same answer.
    A failure of our own code (``exception: ...``) or a worker that kept dying
    (``worker_died: ...``) is returned and charged but not cached (``EvalResult.cacheable``):
    it says nothing about the architecture, so the next request trains it again. Running out
    of memory is remembered by this evaluator only: another device, or this one without the
    neighbours it had, may fit the network.

    Use it as a context manager (or call ``close``) when the backend runs worker processes.

    :param config: the preset; ``config.train`` and ``config.data`` make up the cache context,
        ``config.runtime`` says where training runs, ``config.evaluator`` picks the backend.
    :param data: an already-loaded dataset, to share one copy between evaluators; it must be
        the dataset ``config.data`` describes, or cached results would be filed under the wrong
        context. Default: loaded from ``config.data`` for the serial backend; the parallel
        backends load it in each worker, and here only if ``self.data`` is read.
    :param cache: where results are stored; default ``open_cache(config.evaluator.cache)``
        (a SQLite file, or memory when that is None).
    :param backend: computes the misses; default ``make_backend(config, data)``. A pool of workers
        (process, Ray) trains with ``config`` whatever config it was started for
        (``Backend.with_config``), so one pool can serve several evaluators. The evaluator closes
        it in ``close`` either way.
    :raises ConfigError: the data does not match the config, or the device is unavailable.
    :raises CacheError: the cache file is not a usable nas-gym cache.
    """

    def __init__(self, config: Config, data: Dataset | None = None, cache: Cache | None = None,
                 backend: Backend | None = None) -> None:
        try:
            self.device = _train.resolve_device(config.runtime.device)
        except ValueError as e:
            raise ConfigError(f"runtime.device: {e}") from None
        if data is not None and data.name != config.data.name:
            raise ConfigError(f"data.name is {config.data.name!r} but the dataset passed in is {data.name!r}; "
                              "pass the matching dataset or none")
        self.config = config
        self._owns_cache = cache is None
        if cache is None and config.evaluator.cache is not None:
            ResultCache.check(config.evaluator.cache)  # read-only: a bad file fails before the data loads
        self._data = None if data is None else data.to(self.device)
        if backend is None:
            backend = make_backend(config, self.data if config.evaluator.backend == "serial" else None)
        else:  # workers started for another config train this one's recipe
            backend = backend.with_config(config)
        self.backend: Backend = backend
        # Opened (and, if missing, created) only now: a dataset that fails to load leaves no file behind.
        try:
            self.cache: Cache = open_cache(config.evaluator.cache) if cache is None else cache
        except BaseException:
            backend.close()
            raise
        # Without data in hand, the dataset's known shape decides the space: no load just for that.
        self.space = config.search_space(None if self._data is None else self._data.input_shape)
        self.context = result_context(config, self.space, self.numerics())
        # Results this run keeps but the shared cache must not (out of memory: see
        # ``EvalResult.cacheable``): the same run asking again is not charged twice for them.
        self._run_only: dict[str, EvalResult] = {}
        self.num_classes = config.num_classes if self._data is None else self._data.num_classes
        self.stats = EvalStats()
        # Latency is measured here, in the driver, whatever the backend: one device and one
        # process for every architecture, and memoised so the env's info stays deterministic.
        self.measures_latency = config.reward.cost == "latency"
        self._latency_ms: dict[str, float] = {}
        self._at_epochs: dict[int, TrainingEvaluator] = {}  # evaluate_at's shorter budgets

    @property
    def max_epochs(self) -> int:
        """The most epochs :meth:`evaluate_at` answers at: the recipe's own budget."""
        return int(self.config.train.epochs)

    def evaluate_at(self, arch: Architecture, epochs: int | None) -> EvalResult:
        """The result of training ``arch`` for ``epochs`` epochs with this recipe (None: its own).

        A fidelity here is a run of that many epochs, its learning-rate schedule spread over
        them, as NAS-Bench-201's 12-epoch runs beside its 200-epoch ones; not a point on the
        longer run's curve (that is what a table with learning curves answers). Real training
        cannot go on from a cached result, so each fidelity is paid in full the first time and
        is a cache hit after that; the results are cached under their own context (the recipe
        with ``train.epochs`` changed), charged to this evaluator's clock, trained on its backend.

        :raises ConfigError: ``epochs`` outside 1..``max_epochs``.
        """
        if epochs is None or epochs == self.max_epochs:
            return self.evaluate(arch)
        if not 1 <= epochs <= self.max_epochs:
            raise ConfigError(f"epochs={epochs}: training answers after 1..{self.max_epochs} epochs (train.epochs); "
                              "raise train.epochs for longer runs")
        if epochs not in self._at_epochs:
            from nas_gym.config import load_config

            shorter = load_config(self.config, {"train.epochs": int(epochs)})
            sibling = TrainingEvaluator(shorter, data=self._data, cache=self.cache, backend=self.backend)
            sibling.stats = self.stats  # one clock for the search, whatever the fidelity
            self._at_epochs[epochs] = sibling
        return self._at_epochs[epochs].evaluate(arch)

    def numerics(self) -> dict[str, Any]:
        """What the results' numbers depend on besides the recipe (``nas_gym.training.numerics``), on the
        device the architectures train on: this process's for ``serial``; for workers the same
        device type, unless they get no GPU (``nas_gym.gpus.worker_gpus``; for Ray,
        ``gpus_per_eval`` 0) and train on the CPU. A Ray cluster is assumed to have the driver's
        kind of device (docs/gpu.md)."""
        from nas_gym.execution.gpus import worker_gpus
        from nas_gym.training.numerics import numerics_identity

        ev = self.config.evaluator
        if ev.backend == "process":
            plan = worker_gpus(self.config.runtime.device, ev.workers, ev.gpus_per_eval)
            on_cpu = plan is not None and not any(plan)
        else:
            on_cpu = ev.backend == "ray" and ev.gpus_per_eval == 0
        return numerics_identity(self.config.runtime, torch.device("cpu") if on_cpu else self.device)

    @property
    def data(self) -> Dataset:
        """The dataset on ``self.device``; loaded on first use when the workers hold their own copies."""
        if self._data is None:
            self._data = load_dataset(self.config.data).to(self.device)
        return self._data

    def __repr__(self) -> str:
        return f"TrainingEvaluator({self.config.name!r}, device={self.device}, backend={self.backend!r}, cache={self.cache!r})"

    def close(self) -> None:
        """Stop the backend's workers, and close the cache if this evaluator opened it."""
        self.backend.close()
        if self._owns_cache:
            self.cache.close()

    def __enter__(self) -> TrainingEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _compute(self, archs: list[Architecture]) -> list[EvalResult]:
        """Train ``archs`` (distinct, not cached) as one batch; store and charge each result once, as it arrives.

        If another process stored a result for the same key meanwhile, that one is returned
        (the first stored result wins everywhere), but the training just done is still charged.
        """
        done: dict[int, EvalResult] = {}

        def record(i: int, result: EvalResult) -> None:
            if i in done:  # a backend that reports twice must not be charged twice
                return
            self.stats.charge(result, cached=False)
            if result.reason == OUT_OF_MEMORY:
                self._run_only[archs[i].key()] = result
            elif not self.cache.put(archs[i], self.context, result):
                result = self.cache.get(archs[i], self.context) or result
            done[i] = result

        returned = self.backend.run(archs, on_result=record)
        if len(returned) != len(archs):
            raise RuntimeError(f"{self.backend!r} returned {len(returned)} results for {len(archs)} architectures")
        for i, result in enumerate(returned):
            record(i, result)  # whatever the backend did not stream
        return [done[i] for i in range(len(archs))]

    def evaluate(self, arch: Architecture) -> EvalResult:
        """The result of ``arch``, from the cache if stored, else by training it.

        :raises ArchitectureError: ``arch`` is not in the search space (a caller bug, not a
            training failure, so it is neither trained nor cached).
        """
        return self.evaluate_many([arch])[0]

    def evaluate_many(self, archs: Sequence[Architecture]) -> list[EvalResult]:
        """Results in the order of ``archs``; an architecture repeated in the call is trained
        once, and its repeats are charged as cache hits.

        Every architecture is validated before any training starts, so a bad one fails the call
        at once rather than after minutes of work. The misses go to the backend as one batch,
        which is what lets a parallel backend keep all its workers busy.
        """
        archs = [self.space.validate(a) for a in archs]
        stored = [hit or self._run_only.get(a.key()) for a, hit in zip(archs, self.cache.get_many(archs, self.context),
                                                                       strict=True)]
        found: dict[str, EvalResult] = {}
        misses: dict[str, Architecture] = {}
        repeats: list[str] = []
        for arch, hit in zip(archs, stored, strict=True):
            key = arch.key()
            if key in found or key in misses:
                repeats.append(key)
            elif hit is not None:
                found[key] = hit
                self.stats.charge(hit, cached=True)
            else:
                misses[key] = arch
        if misses:
            found.update(zip(misses, self._compute(list(misses.values())), strict=True))
        for key in repeats:
            self.stats.charge(found[key], cached=True)
        return [self._with_latency(a, found[a.key()]) for a in archs]

    def _with_latency(self, arch: Architecture, result: EvalResult) -> EvalResult:
        """``result`` with ``latency_ms`` when the reward's cost asks for it (see ``nas_gym.rewards``).

        Timed on a freshly built model (weights do not change a dense network's speed), once
        per architecture for the life of the evaluator; added after the cache, which stores
        machine-independent results only.
        """
        if not self.measures_latency or not result.ok:
            return result
        key = arch.key()
        if key not in self._latency_ms:
            shape = self.config.input_shape if self._data is None else self._data.input_shape
            cpu = torch.device("cpu")
            with _train.forked_rng(cpu):
                _train.seed_torch(self.config.train.seed, cpu)
                model = self.space.build_model(arch, shape, self.num_classes)
            self._latency_ms[key] = _train.measure_latency(model, shape, self.device,
                                                           threads=self.config.runtime.threads)
        return dataclasses.replace(result, latency_ms=self._latency_ms[key])
