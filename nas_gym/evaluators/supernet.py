"""The supernet evaluator: one weight-sharing network trained once, every architecture a path.

Weight sharing (ENAS, single-path one-shot) trades fidelity for speed: the space's supernet
(``SearchSpace.build_supernet``) trains once per run, one uniformly drawn path per batch, for
``evaluator.supernet_epochs`` epochs of the preset's ``train`` recipe; after that, an
architecture costs two forward passes: one batch of training data to recalibrate its batch
norm (statistics of random paths fit no single path), then a fixed validation subset to score
it. Rankings from shared weights agree with stand-alone training far less than the table's
(see ``docs/one_shot.md``): treat its accuracies as a low-fidelity signal.

Fairness: the supernet's training seconds are charged to ``stats.train_seconds`` once per run,
when it is first needed (also when it is loaded from disk, at the seconds its training took),
and each scored architecture is charged its scoring seconds; ``compare`` then weighs it by the
compute it used, like any evaluator.

Persistence: the trained weights are written beside the evaluation cache
(``<cache folder>/supernets/<space>-<digest>.pt``; with ``evaluator.cache: null`` a search
pins its cache inside the run folder, and the supernet goes there too), named by a digest of
everything that decides them (data, recipe and seed, the space's section, the epochs). A
resumed search, or another run with the same settings, loads them instead of training again.
Scores are not put in the SQLite cache: they take milliseconds and are a function of the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_gym.config import Config, ConfigError
from nas_gym.data import Dataset, load_dataset
from nas_gym.evaluators.base import EvalResult, EvalStats, EvaluatorBase
from nas_gym.oneshot.memory import fitting_batch, one_shot_autocast, out_of_memory_as
from nas_gym.oneshot.training import BatchStream, PathTrainer
from nas_gym.spaces.base import Architecture
from nas_gym.spaces.capabilities import BuildsSupernet
from nas_gym.spaces.supernet.base import Supernet, score_path
from nas_gym.storage.atomic import atomic_write
from nas_gym.storage.cache import resolve_path
from nas_gym.training.numerics import numerics_identity, numerics_settings
from nas_gym.training.train import cpu_threads, exception_reason, forked_rng, resolve_device, seed_torch

SUPERNET_VERSION = 1  # bump when a change to the supernets or their training changes the weights
# Batch-norm statistics per channel come from CALIBRATION_SAMPLES x spatial positions values
# (5,120 for MNIST-1D): enough for a stable mean and variance, cheap next to the scoring pass.
CALIBRATION_SAMPLES = 128
_PATHS_MEASURED = 8  # random paths whose activations decide the batch (the largest of them)
UNSET = object()


def supernet_digest(config: Config, numerics: dict[str, Any] | None = None) -> str:
    """Digest of everything that decides the trained weights; off the CPU, ``numerics``
    (``nas_gym.numerics.numerics_identity``) too. The batch, when chosen by memory, is checked
    on load instead (it depends on the device's free memory, not on the settings)."""
    payload = {"recipe": config.context_hash(), "space": config.space.model_dump(mode="json"),
               "epochs": config.evaluator.supernet_epochs, "version": SUPERNET_VERSION}
    if config.evaluator.supernet_batch_size:
        payload["batch"] = config.evaluator.supernet_batch_size
    if numerics:
        payload["numerics"] = numerics
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def supernet_file(config: Config, numerics: dict[str, Any] | None = None) -> Path | None:
    """Where the supernet of ``config`` is stored: beside the evaluation cache, or nowhere
    (kept in memory) when the config has no cache."""
    cache = resolve_path(config.evaluator.cache)
    if cache is None:
        return None
    return cache.parent / "supernets" / f"{config.space.kind}-{supernet_digest(config, numerics)}.pt"


def _progress(total: int):
    """A transient bar for the supernet's training on stderr, or None where rich cannot nest
    one inside a running display (rich < 14)."""
    from rich.console import Console
    from rich.errors import LiveError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]supernet"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                   TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    try:
        bar.start()
    except LiveError:
        return None
    bar.add_task("train", total=total)
    return bar


class SupernetEvaluator(EvaluatorBase):
    """:param config: the preset: its space, data, ``train`` recipe and ``evaluator.supernet_*``.
    :param data: an already-loaded dataset (default: loaded from ``config.data`` when first needed).
    :param store: the weights file; default: :func:`supernet_file`; None keeps them in memory.
    """

    def __init__(self, config: Config, data: Dataset | None = None, store: Path | None | object = UNSET) -> None:
        try:
            self.device = resolve_device(config.runtime.device)
        except ValueError as e:
            raise ConfigError(f"runtime.device: {e}") from None
        if data is not None and data.name != config.data.name:
            raise ConfigError(f"data.name is {config.data.name!r} but the dataset passed in is {data.name!r}; "
                              "pass the matching dataset or none")
        self.config = config
        self._data = None if data is None else data.to(self.device)
        self.space = config.search_space(None if data is None else data.input_shape)
        self.num_classes = config.num_classes if data is None else data.num_classes
        if not isinstance(self.space, BuildsSupernet):
            raise ConfigError(f"space {config.space.kind!r} has no build_supernet; use another evaluator kind")
        self.numerics = numerics_identity(config.runtime, self.device)
        self.store: Path | None = supernet_file(config, self.numerics) if store is UNSET else store  # type: ignore[assignment]
        self._batch: int | None = None
        self.stats = EvalStats()
        self.net: Supernet | None = None
        self.train_seconds = 0.0  # what the supernet's training took (or took when it was stored)
        self._charged = False
        self._scored: dict[str, EvalResult] = {}
        self._batches: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    @property
    def data(self) -> Dataset:
        if self._data is None:
            self._data = load_dataset(self.config.data).to(self.device)
        return self._data

    def __repr__(self) -> str:
        return f"SupernetEvaluator({self.config.name!r}, epochs={self.config.evaluator.supernet_epochs}, store={self.store})"

    # -- the shared weights ---------------------------------------------------------------------
    def _build(self) -> Supernet:
        with forked_rng(self.device):
            seed_torch(self.config.train.seed, self.device)
            return self.space.build_supernet(self.data.input_shape, self.num_classes).to(self.device)

    def training_batch(self) -> int:
        """``evaluator.supernet_batch_size``, or the preset's batch lowered to what fits: measured
        on a copy of a fresh supernet with a few paths (``nas_gym.oneshot.memory``)."""
        if self._batch is None:
            self._batch = self.config.evaluator.supernet_batch_size
        if not self._batch:
            net, data, rng = self._build(), self.data, np.random.default_rng(self.config.train.seed)
            autocast = one_shot_autocast(self.device, self.config.runtime)

            def loss(arch: Architecture) -> Callable[[int], torch.Tensor]:
                def run(n: int) -> torch.Tensor:
                    with autocast():
                        logits = net(data.x_train[:n], arch)
                    return torch.nn.functional.cross_entropy(logits.float(), data.y_train[:n])
                return run

            with forked_rng(self.device):
                self._batch = fitting_batch([loss(self.space.sample(rng)) for _ in range(_PATHS_MEASURED)],
                                            self.config.train.batch_size, self.device)
        return self._batch

    def _train(self) -> Supernet:
        """Single-path one-shot training: a uniformly drawn architecture per batch."""
        train, data = self.config.train, self.data
        start = time.perf_counter()
        net = self._build()
        batches = BatchStream(data.x_train, data.y_train, self.training_batch(), train.seed)
        total = self.config.evaluator.supernet_epochs * batches.batches_per_pass
        trainer = PathTrainer(net, batches, train, total, one_shot_autocast(self.device, self.config.runtime))
        rng = np.random.default_rng(train.seed)
        bar = _progress(total)
        losses: list[torch.Tensor] = []

        def steps() -> None:
            with cpu_threads(self.device, self.config.runtime.threads), forked_rng(self.device), \
                    numerics_settings(self.device, self.config.runtime):
                seed_torch(train.seed, self.device)  # dropout's stream
                for _ in range(total):
                    losses.append(trainer.step(self.space.sample(rng)))
                    if bar is not None:
                        bar.advance(bar.task_ids[0])

        def memory_error() -> ConfigError:
            return ConfigError(f"supernet training ran out of memory on {self.device} at batch {batches.batch_size}; "
                               f"set evaluator.supernet_batch_size lower (e.g. {max(2, batches.batch_size // 2)})")

        try:
            out_of_memory_as(steps, self.device, memory_error)
        finally:
            if bar is not None:
                bar.stop()
        if not bool(torch.isfinite(torch.stack(losses[-batches.batches_per_pass:])).all()):  # one sync
            raise ConfigError(f"supernet training diverged (non-finite loss) on {self.config.name!r}; "
                              "lower train.lr or evaluator.supernet_epochs")
        self.train_seconds = time.perf_counter() - start
        return net

    def _save(self, net: Supernet) -> None:
        if self.store is None:
            return
        state = {"version": SUPERNET_VERSION, "digest": supernet_digest(self.config, self.numerics),
                 "seconds": self.train_seconds, "batch": self.training_batch(), "weights": net.state_dict()}
        atomic_write(self.store, lambda f: torch.save(state, f))  # equal settings write equal weights

    def _load(self) -> Supernet | None:
        if self.store is None or not self.store.is_file():
            return None
        state = torch.load(self.store, map_location="cpu", weights_only=True)  # load_state_dict moves it
        if state.get("version") != SUPERNET_VERSION or state.get("digest") != supernet_digest(self.config, self.numerics):
            return None  # another version's file under this name: train afresh and replace it
        if state.get("batch", self.config.train.batch_size) != self.training_batch():
            return None  # trained at another batch (another device's memory): train afresh
        net = self._build()
        net.load_state_dict(state["weights"])
        self.train_seconds = float(state["seconds"])
        return net

    def supernet(self) -> Supernet:
        """The trained supernet: loaded from the store, else trained (and stored). Its training
        seconds are charged to ``stats`` the first time in a run."""
        if self.net is None:
            net = self._load()
            if net is None:
                net = self._train()
                self._save(net)
            self.net = net
        if not self._charged:
            self.stats.train_seconds += self.train_seconds
            self._charged = True
        return self.net

    def _scoring_batches(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Calibration inputs and the validation subset: fixed by the seed, the same for every
        architecture, so scores compare."""
        if self._batches is None:
            data, gen = self.data, torch.Generator().manual_seed(self.config.train.seed)
            calib = torch.randperm(len(data.y_train), generator=gen)[:CALIBRATION_SAMPLES].to(self.device)
            val = torch.randperm(len(data.y_val), generator=gen)[: self.config.evaluator.supernet_val_samples]
            val = val.to(self.device)
            self._batches = (data.x_train[calib], data.x_val[val], data.y_val[val])
        return self._batches

    # -- the Evaluator protocol -----------------------------------------------------------------
    def _score(self, arch: Architecture) -> EvalResult:
        net = self.supernet()
        text, fidelity = arch.text(), float(self.config.evaluator.supernet_epochs)
        params = net.count_params(arch)
        flops = self.space.count_flops(arch, self.data.input_shape, self.num_classes)
        if params > self.config.train.max_params:  # the stand-alone network would be refused too
            return EvalResult.failure(text, f"too_many_params: {params} > {self.config.train.max_params}", params,
                                      flops, fidelity=fidelity)
        start = time.perf_counter()
        try:
            acc = score_path(net, arch, *self._scoring_batches())
        except Exception as e:  # one path that cannot run must not end a search
            return EvalResult.failure(text, exception_reason(e), params, flops, time.perf_counter() - start, fidelity)
        return EvalResult(arch=text, val_acc=acc, params=params, flops=flops,
                          train_seconds=time.perf_counter() - start, fidelity=fidelity)

    def evaluate_many(self, archs: Sequence[Architecture]) -> list[EvalResult]:
        """Scores in the order of ``archs``; an architecture scored before in this run (or a
        network equal to one, by key) is charged as a cache hit."""
        archs = [self.space.validate(a) for a in archs]
        out = []
        with cpu_threads(self.device, self.config.runtime.threads):
            for arch in archs:
                key = arch.key()
                cached = key in self._scored
                if not cached:
                    self._scored[key] = self._score(arch)
                result = self._scored[key]
                self.stats.charge(result, cached=cached)
                out.append(dataclasses.replace(result, arch=arch.text()))
        return out

    def state(self) -> dict[str, Any]:
        return {**super().state(), "supernet_charged": self._charged}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._charged = bool(state.get("supernet_charged", False))
