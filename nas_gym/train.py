"""Train one architecture on tensors that already live on the device, and score it.

The design follows airbench rather than a torchvision script: the whole dataset sits on the
device, a batch is a slice of a permutation (no DataLoader, no worker processes, no per-sample
Python), and augmentation, when asked for, runs batched on the device. On 2 CPU cores this
measures as fast as a bare slicing loop and up to ~13% faster than a DataLoader loop for the
smallest networks; for larger ones the arithmetic dominates, so throughput comes from the
budget, one thread per process and parallel workers (``scripts/bench_trainer.py``).

Everything that could leak between evaluations is saved and restored: torch's global RNG (via
``fork_rng``), the CPU thread count and ``cudnn.benchmark``. The same config and seed therefore
give the same result in any order and in any process.
"""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nas_gym.config import RuntimeConfig, TrainConfig
from nas_gym.data import Dataset
from nas_gym.evaluators.base import FAILED, OK, EvalResult
from nas_gym.spaces.base import Architecture, SearchSpace

# Evaluation keeps no activations for backward, so a batch several times the training batch
# fits wherever training fitted; fewer, larger batches cut the per-call overhead.
_EVAL_BATCH_MIN = 1024
_EVAL_BATCH_FACTOR = 4


@dataclass(frozen=True)
class TrainMetrics:
    """What one training run measured.

    :param val_acc: validation accuracy in [0, 1] (0 for a failure).
    :param test_acc: test accuracy, only when asked for, else None.
    :param train_loss: mean training loss over the last epoch (nan for a failure).
    :param seconds: wall-clock seconds of the whole run, final evaluation included: that is
        what an agent pays per architecture.
    :param status: ``ok`` or ``failed``.
    :param reason: ``nan_loss`` or ``out_of_memory`` when failed, else empty.
    """

    val_acc: float
    test_acc: float | None
    train_loss: float
    seconds: float
    status: str = OK
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> cuda if available, else mps, else cpu; an explicit device must exist.

    A bare ``cuda`` gets its index filled in, so comparing it with a tensor's device works.
    :raises ValueError: if the requested accelerator is not available.
    """
    mps = getattr(torch.backends, "mps", None)
    mps_ok = mps is not None and mps.is_available()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available; use device 'auto' or 'cpu'")
        return torch.device("cuda", torch.cuda.current_device() if dev.index is None else dev.index)
    if dev.type == "mps" and not mps_ok:
        raise ValueError(f"device {device!r} requested but MPS is not available; use device 'auto' or 'cpu'")
    return dev


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index or 0) == (b.index or 0)


def _forked_rng(device: torch.device) -> contextlib.AbstractContextManager:
    """Fork the CPU generator, and the accelerator's when training on one, so seeding inside
    leaves the caller's random streams exactly as they were."""
    if device.type == "cpu":
        return torch.random.fork_rng(devices=[])
    return torch.random.fork_rng(devices=[device.index or 0], device_type=device.type)


@contextlib.contextmanager
def _cpu_threads(device: torch.device, threads: int | None) -> Iterator[None]:
    """Set torch's CPU threads for the run and put the old value back.

    Default 1: the small networks here do not speed up with a second thread on a 2-core
    machine, and two one-thread workers beat one two-thread worker (see ANCHORS.md).
    """
    previous = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(threads or 1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# What running out of memory looks like: CUDA's own error class (``torch.OutOfMemoryError`` in
# torch >= 2.5, an alias of ``torch.cuda.OutOfMemoryError``), Python's MemoryError for host
# memory, and the plain RuntimeErrors that MPS and older CUDA paths raise.
_OOM_TYPES: tuple[type[BaseException], ...] = (getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError),
                                                torch.cuda.OutOfMemoryError, MemoryError)


def _is_oom(error: BaseException) -> bool:
    return isinstance(error, _OOM_TYPES) or (isinstance(error, RuntimeError) and "out of memory" in str(error))


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based) of ``total``.

    Linear warm-up over the first ``warmup`` steps keeps large learning rates from wrecking the
    first batches of a fresh batch-norm network; the decay after it ends just above zero, so
    the last step still learns.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "linear":
        return 1.0 - progress
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
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


def augment_images(x: torch.Tensor, generator: torch.Generator, pad: int) -> torch.Tensor:
    """Random crop after reflect padding plus random horizontal flip, per image, in one gather.

    Runs batched on the data's device (as airbench does), so augmentation never becomes the
    bottleneck; the flip is folded into the column indices rather than done as a second pass.
    """
    b, c, h, w = x.shape
    dev = x.device
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (b, 1), device=dev, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), device=dev, generator=generator)
    rows = dy + torch.arange(h, device=dev)
    cols = dx + torch.arange(w, device=dev)
    flip = torch.rand((b, 1), device=dev, generator=generator) < 0.5
    cols = torch.where(flip, cols.flip(1), cols)
    batch = torch.arange(b, device=dev)[:, None, None, None]
    chan = torch.arange(c, device=dev)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


class _Runner:
    """Per-run device settings: autocast and memory format, decided once."""

    def __init__(self, device: torch.device, runtime: RuntimeConfig, image: bool) -> None:
        self.device = device
        # bf16 needs no loss scaling (fp16 would); GPUs without it train in fp32 instead.
        self.amp = device.type == "cuda" and runtime.amp and torch.cuda.is_bf16_supported()
        self.channels_last = device.type == "cuda" and image

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @torch.no_grad()
    def accuracy(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
        model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        with self.autocast():
            for i in range(0, len(y), batch):
                correct += (model(self.prepare(x[i : i + batch])).argmax(1) == y[i : i + batch]).sum()
        return correct.item() / max(1, len(y))


def _fit(model: nn.Module, data: Dataset, config: TrainConfig, run: _Runner, want_test: bool,
         start: float) -> TrainMetrics:
    device = run.device
    model.to(device)
    if run.channels_last:
        model.to(memory_format=torch.channels_last)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    n = len(y_train)
    batch = min(config.batch_size, n)
    # Drop the ragged last batch: a batch of one breaks batch norm, and equal batches keep
    # the step count (and so the schedule) a simple function of the budget.
    steps_per_epoch = n // batch
    total = steps_per_epoch * config.epochs
    warmup = int(config.warmup_fraction * total)
    optimizer = _optimizer(model, config)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    # The permutation comes from a CPU generator: the same batches on every device.
    order_gen = torch.Generator().manual_seed(config.seed)
    augment = config.augment and x_train.ndim == 4
    if augment:
        aug_gen = torch.Generator(device=device).manual_seed(config.seed)
        pad = max(1, x_train.shape[-1] // 16)  # 2 pixels for 32x32, as airbench translates

    step, last_loss = 0, float("nan")
    for _ in range(config.epochs):
        model.train()
        perm = torch.randperm(n, generator=order_gen).to(device)
        loss_sum = torch.zeros((), device=device)
        for i in range(steps_per_epoch):
            idx = perm[i * batch : (i + 1) * batch]
            xb, yb = x_train[idx], y_train[idx]
            if augment:
                xb = augment_images(xb, aug_gen, pad)
            factor = lr_factor(step, total, warmup, config.schedule)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * factor
            with run.autocast():
                loss = criterion(model(run.prepare(xb)).float(), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            step += 1
        # One host sync per epoch rather than per step; a blow-up still stops within an epoch.
        last_loss = loss_sum.item() / steps_per_epoch
        if not math.isfinite(last_loss):
            return TrainMetrics(0.0, None, float("nan"), time.perf_counter() - start, FAILED, "nan_loss")

    eval_batch = max(_EVAL_BATCH_MIN, _EVAL_BATCH_FACTOR * config.batch_size)
    val_acc = run.accuracy(model, data.x_val.to(device), data.y_val.to(device), eval_batch)
    test_acc = run.accuracy(model, data.x_test.to(device), data.y_test.to(device), eval_batch) if want_test else None
    return TrainMetrics(val_acc, test_acc, last_loss, time.perf_counter() - start)


def train(model: nn.Module, data: Dataset, config: TrainConfig, runtime: RuntimeConfig, *,
          want_test: bool = False) -> TrainMetrics:
    """Train ``model`` on ``data.x_train`` with the recipe in ``config``; score on validation
    (and on test only when ``want_test``, so search never peeks at it).

    Dropout and augmentation draw from streams seeded by ``config.seed`` inside a forked RNG,
    so the caller's global torch RNG state is unchanged afterwards.

    :param model: moved to the resolved device (in place, as ``nn.Module.to`` does).
    :param data: moved to the device if it is not there yet; move it once beforehand to
        avoid a copy per call.
    :returns: metrics; a NaN/inf loss or running out of device (or host) memory gives ``status='failed'``
        instead of an exception. Other exceptions propagate.
    """
    device = resolve_device(runtime.device)
    run = _Runner(device, runtime, image=data.x_train.ndim == 4)
    start = time.perf_counter()
    previous_benchmark = torch.backends.cudnn.benchmark
    try:
        with _cpu_threads(device, runtime.threads), _forked_rng(device):
            torch.manual_seed(config.seed)
            if device.type == "cuda":
                torch.backends.cudnn.benchmark = True  # fixed shapes within a run: tuning pays off
            return _fit(model, data, config, run, want_test, start)
    except (RuntimeError, MemoryError) as e:
        if not _is_oom(e):
            raise
    finally:
        torch.backends.cudnn.benchmark = previous_benchmark
    # Only reached after an out-of-memory error; the traceback holding the activations is gone.
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return TrainMetrics(0.0, None, float("nan"), time.perf_counter() - start, FAILED, "out_of_memory")


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
    with _cpu_threads(device, threads), torch.inference_mode():
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


def _exception_reason(error: BaseException) -> str:
    """One line, of bounded length: it is stored in the cache and shown in a leaderboard row,
    and torch's messages can span many lines (a whole shape report)."""
    return f"exception: {type(error).__name__}: {' '.join(str(error).split())}"[:300]


def evaluate_architecture(arch: Architecture, data: Dataset, config: TrainConfig, runtime: RuntimeConfig, *,
                          want_test: bool = False, space: SearchSpace | None = None) -> EvalResult:
    """Build, count, train and score ``arch``; every failure comes back as a failed result.

    A network over ``config.max_params`` is refused before any training, so an agent that
    proposes huge networks pays almost nothing for them. The initial weights come from
    ``config.seed`` in a forked RNG: the same architecture always starts from the same weights.

    :param space: the space that builds ``arch``; None means a layer chain (``Chain``).
    :raises ValueError: only for an unusable ``runtime.device`` (a setup error, not a result).
    """
    if space is None:  # a layer chain: its builder needs nothing from the space
        from nas_gym.spaces.chain import count_flops
        from nas_gym.spaces.layer_chain_model import build_model
    else:
        build_model, count_flops = space.build_model, space.count_flops
    device = resolve_device(runtime.device)
    text, fidelity = arch.text(), float(config.epochs)
    try:
        with _forked_rng(device):
            torch.manual_seed(config.seed)
            model = build_model(arch, data.input_shape, data.num_classes)
        params = count_params(model)
        flops = count_flops(arch, data.input_shape, data.num_classes)
    except Exception as e:  # any builder error is a property of the architecture, not a crash
        return EvalResult.failure(text, "out_of_memory" if _is_oom(e) else _exception_reason(e), fidelity=fidelity)
    if params > config.max_params:
        return EvalResult.failure(text, f"too_many_params: {params} > {config.max_params}", params, flops,
                                  fidelity=fidelity)
    try:
        if not _same_device(data.device, device):
            data = data.to(device)
        m = train(model, data, config, runtime, want_test=want_test)
    except Exception as e:  # one bad architecture (or a full device) must not end a search
        reason = "out_of_memory" if _is_oom(e) else _exception_reason(e)
        return EvalResult.failure(text, reason, params, flops, fidelity=fidelity)
    finally:
        del model
    return EvalResult(arch=text, val_acc=m.val_acc, params=params, flops=flops, train_seconds=m.seconds,
                      train_loss=m.train_loss, test_acc=m.test_acc, status=m.status, reason=m.reason,
                      fidelity=fidelity)
