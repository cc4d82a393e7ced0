"""Train an architecture, or several seeds of it at once, and score it.

The loop itself is ``nas_gym.training.fit`` (data on the device, one gather per epoch, no DataLoader);
the optimiser step is ``nas_gym.training.stepper`` (torch's fused kernels through the functional API);
``nas_gym.training.model_rewrite`` turns K seeds of one network into one network K times as wide, and
runs 1-D networks as channels-last 2-D ones on a CPU. This module decides the device, the thread
count and what a failure looks like, and builds networks for the evaluators.

Everything that could leak between evaluations is saved and restored: torch's global RNG (via
``fork_rng``), the CPU thread count and the CUDA flags (``nas_gym.training.numerics.numerics_settings``). The same config and seed therefore
give the same result in any order and in any process.
"""

from __future__ import annotations

import contextlib
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from nas_gym.config import RuntimeConfig, TrainConfig
from nas_gym.data import Dataset
from nas_gym.results import FAILED, EvalResult
from nas_gym.spaces.base import Architecture, SearchSpace
from nas_gym.training.device import resolve_device
from nas_gym.training.fit import EpochMetrics, Runner, TrainMetrics, augment_images, lr_factor
from nas_gym.training.fit import fit as _fit
from nas_gym.training.model_rewrite import RewriteError, Rewritten, rewrite, unchanged
from nas_gym.training.numerics import (
    DeviceLostError,
    deterministic_pooling,
    free_memory,
    is_device_lost,
    is_out_of_memory,
    numerics_settings,
)

__all__ = ["EpochMetrics", "TrainMetrics", "augment_images", "evaluate_architecture", "evaluate_seeds", "lr_factor",
           "measure_latency", "resolve_device", "train", "train_members", "train_seeds"]


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index or 0) == (b.index or 0)


def forked_rng(device: torch.device) -> contextlib.AbstractContextManager:
    """Fork the CPU generator, and the accelerator's when training on one, so seeding inside
    leaves the caller's random streams exactly as they were."""
    if device.type == "cpu":
        return torch.random.fork_rng(devices=[])
    return torch.random.fork_rng(devices=[device.index or 0], device_type=device.type)


def seed_torch(seed: int, device: torch.device) -> None:
    """``torch.manual_seed`` for the CPU and ``device`` only (inside ``forked_rng(device)``).

    ``torch.manual_seed`` also seeds every CUDA generator (queued until CUDA starts, if it has
    not), which ``fork_rng(devices=[])`` does not put back: a CPU run on a GPU host would reseed
    the GPU's streams behind the caller's back.
    """
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)
    elif device.type == "mps":
        torch.mps.manual_seed(seed)


@contextlib.contextmanager
def cpu_threads(device: torch.device, threads: int | None) -> Iterator[None]:
    """Set torch's CPU threads for the run and put the old value back.

    Default 1: the small networks here do not speed up with a second thread on a 2-core
    machine, and two one-thread workers beat one two-thread worker (measured on MNIST-1D networks).
    """
    previous = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(threads or 1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


_is_oom = is_out_of_memory


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """One parameter group with ``foreach`` kernels (fewer Python-level calls per step).

    Weight decay covers batch-norm scales and biases too: a second group to spare them doubled
    the optimiser step in a micro-benchmark here (0.2 -> 0.4 ms), and small networks on a CPU
    are bound by exactly that kind of per-step bookkeeping.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                               nesterov=config.momentum > 0, foreach=True)
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, weight_decay=config.weight_decay, foreach=True)


def _member_net(models: Sequence[nn.Module], data: Dataset, device: torch.device) -> Rewritten | None:
    """The network that trains ``models`` in one pass, or None if they must train one by one.

    On a CPU, 1-D networks run as channels-last 2-D ones (``nas_gym.training.model_rewrite``); a single
    network the rewrite cannot cover trains as it is.
    """
    lift = device.type == "cpu" and data.x_train.ndim == 3
    if len(models) == 1 and not lift:
        return unchanged(models[0])
    try:
        rw = rewrite(models, data.input_shape, lift=lift)
    except RewriteError:
        rw = None
    return unchanged(models[0]) if rw is None and len(models) == 1 else rw


def train_seeds(models: Sequence[nn.Module], data: Dataset, config: TrainConfig, runtime: RuntimeConfig,
                seeds: Sequence[int], *, want_test: bool = False) -> list[TrainMetrics]:
    """Train K networks of one architecture, ``models[k]`` built with seed ``seeds[k]``, in one
    pass; each ends as if trained alone by ``train`` with ``config.seed = seeds[k]``.
    (``train_members`` without learning curves; see there.)"""
    return train_members(models, data, config, runtime, seeds, want_test=want_test, epoch_metrics=False)


def train_members(models: Sequence[nn.Module], data: Dataset, config: TrainConfig, runtime: RuntimeConfig,
                  seeds: Sequence[int], *, want_test: bool = False, epoch_metrics: bool = True,
                  clock: Callable[[], float] = time.perf_counter) -> list[TrainMetrics]:
    """Train K networks, ``models[k]`` built with seed ``seeds[k]``, in one pass; each ends as if
    trained alone by ``train`` with ``config.seed = seeds[k]``. The networks are K seeds of one
    architecture, or networks of the cell space that differ in their cell (then each cell op runs
    once over the members that use it: ``nas_gym.training.grouped_cell``).

    The members are stacked along channels into one network (``nas_gym.training.model_rewrite``), each with
    its own data order, augmentation and dropout streams, loss term and metrics (see
    ``nas_gym.training.fit``); one member's NaN loss fails that member only. The trained weights are
    copied back into ``models``. Results equal separate runs up to float rounding (a grouped
    convolution sums in another order); on a GPU dropout masks differ from a separate run's
    (``MemberDropout``). Networks the rewrite cannot stack (a layer with weights and no rule, or a
    forward that mixes channels), and a stack that runs out of memory, train one by one instead,
    with a warning.

    :param models: built alike, or cell networks of one skeleton, each initialised from its seed
        (``evaluate_seeds`` and ``nas_gym.training.members.evaluate_members`` do this).
    :param seeds: one per model; ``config.seed`` is not read.
    :param epoch_metrics: also score every member after every epoch (``TrainMetrics.curve``).
    :param clock: what seconds are counted in (``time.process_time`` for CPU seconds).
    :returns: one ``TrainMetrics`` per member, in order; ``seconds`` is each member's equal share.
    """
    if len(models) != len(seeds) or not seeds:
        raise ValueError(f"train_seeds needs one seed per model, got {len(models)} models and {len(seeds)} seeds")
    device = resolve_device(runtime.device)
    run = Runner(device, runtime, image=data.x_train.ndim == 4)
    start = clock()
    out_of_memory = False
    try:
        with cpu_threads(device, runtime.threads), forked_rng(device), numerics_settings(device, runtime):
            seed_torch(seeds[0], device)  # plain nn.Dropout in a network that trains unchanged
            for m in models:
                m.to(device)
                if runtime.deterministic and device.type == "cuda":
                    deterministic_pooling(m)
                if run.channels_last:
                    m.to(memory_format=torch.channels_last)
            rw = _member_net(models, data, device)
            if rw is not None:
                if run.channels_last:  # stacked weights are built contiguous: put them back in the fast format
                    rw.net.to(memory_format=torch.channels_last)
                metrics = _fit(rw, data, config, seeds, run, want_test, start, epoch_metrics=epoch_metrics, clock=clock)
                rw.write_back()
                return metrics
    except (RuntimeError, MemoryError) as e:
        if not _is_oom(e):
            raise
        out_of_memory = True
    if out_of_memory:  # freed here: inside the except block the traceback still held the activations
        free_memory(device)
        if len(models) == 1:
            return [TrainMetrics(0.0, None, float("nan"), clock() - start, FAILED, "out_of_memory")]
    warnings.warn(f"{len(models)} seeds trained one by one: the network could not be stacked or did not fit", stacklevel=2)
    return [train_members([m], data, config, runtime, [s], want_test=want_test, epoch_metrics=epoch_metrics,
                          clock=clock)[0] for m, s in zip(models, seeds, strict=True)]


def train(model: nn.Module, data: Dataset, config: TrainConfig, runtime: RuntimeConfig, *,
          want_test: bool = False) -> TrainMetrics:
    """Train ``model`` on ``data.x_train`` with the recipe in ``config``; score on validation
    (and on test only when ``want_test``, so search never peeks at it).

    Dropout and augmentation draw from streams seeded by ``config.seed`` inside a forked RNG,
    so the caller's global torch RNG state is unchanged afterwards.

    :param model: moved to the resolved device and trained in place (as ``nn.Module.to`` moves).
    :param data: moved to the device if it is not there yet; move it once beforehand to
        avoid a copy per call.
    :returns: metrics; a NaN/inf loss or running out of device (or host) memory gives ``status='failed'``
        instead of an exception. Other exceptions propagate.
    """
    return train_seeds([model], data, config, runtime, [config.seed], want_test=want_test)[0]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure_latency(model: nn.Module, input_shape: tuple[int, ...], device: torch.device, *,
                    threads: int | None = None, warmup: int = 3, repeats: int = 15) -> float:
    """Median milliseconds of one batch-1 forward pass of ``model`` on ``device``, in eval mode.

    Batch 1 is what a deployed classifier serves, and where per-layer overheads, which FLOPs
    ignore, show. The warm-up runs absorb one-off costs (allocator, kernel selection, lazy
    initialisation); the median of the timed runs shrugs off the interruptions another process
    causes on a shared machine, which a mean would not. The thread count is the trainer's (one
    by default), so networks are compared under the same conditions as they were trained.
    Weights do not change the time of dense layers, so an untrained model measures the same as
    a trained one. The model is moved to ``device`` and left in eval mode.
    """
    model.to(device).eval()
    x = torch.randn((1, *input_shape), generator=torch.Generator().manual_seed(0)).to(device)
    times = []
    with cpu_threads(device, threads), torch.inference_mode():
        for _ in range(warmup):
            model(x)
        _synchronize(device)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            _synchronize(device)
            times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def count_params(model: nn.Module) -> int:
    """Trainable parameters (batch-norm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def exception_reason(error: BaseException) -> str:
    """One line, of bounded length: it is stored in the cache and shown in a leaderboard row,
    and torch's messages can span many lines (a whole shape report)."""
    return f"exception: {type(error).__name__}: {' '.join(str(error).split())}"[:300]


def evaluate_seeds(arch: Architecture, data: Dataset, config: TrainConfig, runtime: RuntimeConfig,
                   seeds: Sequence[int], *, want_test: bool = False, space: SearchSpace | None = None) -> list[EvalResult]:
    """``evaluate_architecture`` for each seed in ``seeds``, trained in one pass (``train_seeds``).

    Result k is what ``evaluate_architecture`` gives with ``config.seed = seeds[k]``, up to float
    rounding; ``train_seconds`` is each seed's equal share of the pass.
    """
    if space is None:  # a layer chain: its builder needs nothing from the space
        from nas_gym.spaces.layer_chain.chain import count_flops
        from nas_gym.spaces.layer_chain.model import build_model
    else:
        build_model, count_flops = space.build_model, space.count_flops
    device = resolve_device(runtime.device)
    text, fidelity = arch.text(), float(config.epochs)
    try:
        models = []
        for seed in seeds:
            with forked_rng(device):
                seed_torch(seed, device)
                models.append(build_model(arch, data.input_shape, data.num_classes))
        params = count_params(models[0])
        flops = count_flops(arch, data.input_shape, data.num_classes)
    except Exception as e:  # any builder error is a property of the architecture, not a crash
        reason = "out_of_memory" if _is_oom(e) else exception_reason(e)
        return [EvalResult.failure(text, reason, fidelity=fidelity)] * len(seeds)
    if params > config.max_params:
        refused = EvalResult.failure(text, f"too_many_params: {params} > {config.max_params}", params, flops,
                                     fidelity=fidelity)
        return [refused] * len(seeds)
    try:
        if not _same_device(data.device, device):
            data = data.to(device)
        metrics = train_seeds(models, data, config, runtime, seeds, want_test=want_test)
    except Exception as e:  # one bad architecture (or a full device) must not end a search
        if is_device_lost(e):  # nothing can train in this process any more: not this architecture's result
            raise DeviceLostError(f"{device}: the CUDA context died ({exception_reason(e)}); nothing more can train in "
                                  "this process: resume the run (nas-gym search --resume RUN_DIR)") from e
        reason = "out_of_memory" if _is_oom(e) else exception_reason(e)
        return [EvalResult.failure(text, reason, params, flops, fidelity=fidelity)] * len(seeds)
    finally:
        del models
    return [EvalResult(arch=text, val_acc=m.val_acc, params=params, flops=flops, train_seconds=m.seconds,
                       train_loss=m.train_loss, test_acc=m.test_acc, status=m.status, reason=m.reason,
                       fidelity=fidelity) for m in metrics]


def evaluate_architecture(arch: Architecture, data: Dataset, config: TrainConfig, runtime: RuntimeConfig, *,
                          want_test: bool = False, space: SearchSpace | None = None) -> EvalResult:
    """Build, count, train and score ``arch``; every failure comes back as a failed result.

    A network over ``config.max_params`` is refused before any training, so an agent that
    proposes huge networks pays almost nothing for them. The initial weights come from
    ``config.seed`` in a forked RNG: the same architecture always starts from the same weights.

    :param space: the space that builds ``arch``; None means a layer chain (``Chain``).
    :raises ValueError: only for an unusable ``runtime.device`` (a setup error, not a result).
    :raises DeviceLostError: the CUDA context died (a device-side assert): no result is trustworthy
        in this process any more; a worker exits on it, so that its pool retries the architecture.
    """
    return evaluate_seeds(arch, data, config, runtime, [config.seed], want_test=want_test, space=space)[0]
