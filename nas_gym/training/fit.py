"""The training loop: K members of one network (K seeds, or just one) trained in one pass.

The design follows airbench rather than a torchvision script: the whole dataset sits on the
device, a batch is a slice of a permutation (no DataLoader, no worker processes, no per-sample
Python), and augmentation, when asked for, runs batched on the device.

Every member gets exactly what a run of its own would get: its own permutation and augmentation
streams (generators seeded with its seed), its own dropout masks (``MemberDropout``), its own
loss term, so its own gradients, and the same optimiser, learning-rate schedule and label
smoothing. Members share no weights, so one member's NaN cannot reach another; a member whose
epoch loss is not finite is recorded as failed (as a run of its own would stop there), its loss is
masked out of the sum from then on, and the others train on.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nas_gym.config import RuntimeConfig, TrainConfig
from nas_gym.data import Dataset
from nas_gym.results import FAILED, OK
from nas_gym.training.model_rewrite import Rewritten, seed_members
from nas_gym.training.numerics import LossScaler, precision
from nas_gym.training.stepper import Stepper

# Evaluation keeps no activations for backward, so a batch several times the training batch
# fits wherever training fitted; fewer, larger batches cut the per-call overhead.
_EVAL_BATCH_MIN = 1024
_EVAL_BATCH_FACTOR = 4


@dataclass(frozen=True)
class EpochMetrics:
    """One point of a member's learning curve, scored after an epoch as if training had stopped there
    (learning-rate schedule aside: the schedule spans the whole budget, as NAS-Bench-201's curves do).

    :param epoch: epochs trained, from 1.
    :param val_acc: validation accuracy after this epoch.
    :param test_acc: test accuracy after this epoch, only when asked for, else None.
    :param train_loss: mean training loss over this epoch.
    :param seconds: the member's equal share of the clock from the start through this epoch's
        scoring, less the scoring of earlier epochs: what training this far and scoring once costs.
    """

    epoch: int
    val_acc: float
    test_acc: float | None
    train_loss: float
    seconds: float


@dataclass(frozen=True)
class TrainMetrics:
    """What one training run (one member) measured.

    :param val_acc: validation accuracy in [0, 1] (0 for a failure).
    :param test_acc: test accuracy, only when asked for, else None.
    :param train_loss: mean training loss over the last epoch (nan for a failure).
    :param seconds: wall-clock seconds of the whole run, final evaluation included: that is
        what an agent pays per architecture. Members trained together each get an equal share.
    :param status: ``ok`` or ``failed``.
    :param reason: ``nan_loss`` or ``out_of_memory`` when failed, else empty.
    :param curve: one point per epoch when asked for (``epoch_metrics``), else empty; a failed
        member's curve ends at its last finite epoch. The last point equals the final metrics.
    """

    val_acc: float
    test_acc: float | None
    train_loss: float
    seconds: float
    status: str = OK
    reason: str = ""
    curve: tuple[EpochMetrics, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == OK


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


class Runner:
    """Per-run device settings: autocast and memory format, decided once."""

    def __init__(self, device: torch.device, runtime: RuntimeConfig, image: bool) -> None:
        self.device = device
        # bf16 where native; fp16 with loss scaling on older GPUs (see ``nas_gym.training.numerics.precision``).
        self.precision = precision(device, runtime)
        self.amp = self.precision != "fp32"
        self.scaler = LossScaler(self.precision == "fp16")
        self.channels_last = device.type == "cuda" and image

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16 if self.precision == "bf16" else torch.float16)
        return contextlib.nullcontext()

    def inputs(self, rw: Rewritten, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        x = rw.prepare(xs)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @torch.no_grad()
    def accuracies(self, rw: Rewritten, x: torch.Tensor, y: torch.Tensor, batch: int) -> list[float]:
        """Each member's accuracy on ``(x, y)``; every member sees the same samples."""
        rw.net.eval()
        correct = torch.zeros(rw.members, dtype=torch.int64, device=self.device)
        with self.autocast():
            for i in range(0, len(y), batch):
                xb = x[i : i + batch]
                logits = rw.net(self.inputs(rw, [xb] * rw.members)).reshape(len(xb), rw.members, -1)
                correct += (logits.argmax(-1) == y[i : i + batch, None]).sum(0)
        return [c / max(1, len(y)) for c in correct.tolist()]


def _member_losses(logits: torch.Tensor, y: torch.Tensor, members: int, smoothing: float) -> torch.Tensor:
    """``(K,)``: member k's mean cross-entropy on its own logits slice and labels, computed as a
    run of its own computes it."""
    width = logits.shape[1] // members
    return torch.stack([F.cross_entropy(logits[:, k * width : (k + 1) * width], y[k], label_smoothing=smoothing)
                        for k in range(members)])


def fit(rw: Rewritten, data: Dataset, config: TrainConfig, seeds: Sequence[int], run: Runner, want_test: bool,
        start: float, *, epoch_metrics: bool = False, clock: Callable[[], float] = time.perf_counter
        ) -> list[TrainMetrics]:
    """Train ``rw.net`` (member k seeded by ``seeds[k]``) and score each member.

    ``config.seed`` is not read: the seeds are. The caller sets threads, forks the RNG and seeds
    torch's global generator (used by plain ``nn.Dropout`` when the network was not rewritten).
    With ``epoch_metrics`` every member is also scored after every epoch (``TrainMetrics.curve``);
    scoring leaves the weights, batch-norm statistics and random streams alone, so training is
    the same either way. ``start`` is a reading of ``clock``; seconds exclude the scoring of
    epochs before the last, so they do not depend on whether a curve was recorded.
    """
    device, net, k = run.device, rw.net, rw.members
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    n = len(y_train)
    batch = min(config.batch_size, n)
    # Drop the ragged last batch: a batch of one breaks batch norm, and equal batches keep
    # the step count (and so the schedule) a simple function of the budget.
    steps_per_epoch = n // batch
    used = steps_per_epoch * batch
    total = steps_per_epoch * config.epochs
    warmup = int(config.warmup_fraction * total)
    stepper = Stepper(net.parameters(), config, device)
    seed_members(net, seeds, device)
    # Permutations come from CPU generators: the same batches on every device.
    order_gens = [torch.Generator().manual_seed(s) for s in seeds]
    augment = config.augment and x_train.ndim == 4
    if augment:
        # On the device: a CUDA stream differs from a CPU one, so the device type is in the cache key.
        aug_gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        pad = max(1, x_train.shape[-1] // 16)  # 2 pixels for 32x32, as airbench translates

    alive = torch.ones(k, dtype=torch.bool, device=device)
    failed = [False] * k
    last_loss = [float("nan")] * k
    curves: list[list[EpochMetrics]] = [[] for _ in range(k)]
    scoring = 0.0  # clock spent scoring epochs before the last: not part of any member's cost
    step = 0
    for epoch in range(1, config.epochs + 1):
        net.train()
        # Gathered per step: a whole epoch gathered at once measured only ~4% faster on small
        # networks, and would copy the training set once per member (1.8 GB for CIFAR-10, K=3).
        perms = torch.stack([torch.randperm(n, generator=g)[:used] for g in order_gens]).to(device)  # (K, used)
        loss_sum = torch.zeros(k, device=device)
        for i in range(steps_per_epoch):
            idx = perms[:, i * batch : (i + 1) * batch]
            xs = [x_train[j] for j in idx]
            if augment:
                xs = [augment_images(x, g, pad) for x, g in zip(xs, aug_gens, strict=True)]
            with run.autocast():
                logits = net(run.inputs(rw, xs)).float()
            losses = _member_losses(logits, y_train[idx], k, config.label_smoothing)
            stepper.zero_grad()
            run.scaler.scale(losses.sum() if k == 1 else torch.where(alive, losses, 0.0).sum()).backward()
            if run.scaler.unscale(stepper.params):  # always, but for an fp16 overflow
                stepper.step(config.lr * lr_factor(step, total, warmup, config.schedule))
            loss_sum += losses.detach()
            step += 1
        # One host sync per epoch rather than per step; a blow-up still stops within an epoch.
        epoch_loss = (loss_sum / steps_per_epoch).tolist()
        for j, value in enumerate(epoch_loss):
            if not failed[j]:
                last_loss[j] = value
                failed[j] = not math.isfinite(value)
        alive = torch.tensor([not f for f in failed], device=device)
        if all(failed):
            break
        if epoch_metrics and epoch < config.epochs:
            trained = clock()
            val, test = _score(rw, data, config, run, want_test)
            scored = clock()
            _extend(curves, failed, epoch, val, test, last_loss, (scored - start - scoring) / k)
            scoring += scored - trained

    if all(failed):
        seconds = (clock() - start - scoring) / k
        return [TrainMetrics(0.0, None, float("nan"), seconds, FAILED, "nan_loss", tuple(c)) for c in curves]
    val, test = _score(rw, data, config, run, want_test)
    seconds = (clock() - start - scoring) / k
    if epoch_metrics and epoch == config.epochs:
        _extend(curves, failed, epoch, val, test, last_loss, seconds)
    return [TrainMetrics(0.0, None, float("nan"), seconds, FAILED, "nan_loss", tuple(curves[j])) if failed[j]
            else TrainMetrics(val[j], test[j], last_loss[j], seconds, curve=tuple(curves[j])) for j in range(k)]


def _score(rw: Rewritten, data: Dataset, config: TrainConfig, run: Runner,
           want_test: bool) -> tuple[list[float], list[float | None]]:
    """Every member's validation accuracy, and test accuracy when asked for (else Nones)."""
    device = run.device
    eval_batch = max(_EVAL_BATCH_MIN, _EVAL_BATCH_FACTOR * config.batch_size)
    val = run.accuracies(rw, data.x_val.to(device), data.y_val.to(device), eval_batch)
    if not want_test:
        return val, [None] * rw.members
    return val, run.accuracies(rw, data.x_test.to(device), data.y_test.to(device), eval_batch)


def _extend(curves: list[list[EpochMetrics]], failed: list[bool], epoch: int, val: list[float],
            test: list[float | None], losses: list[float], seconds: float) -> None:
    """Append this epoch's point to every member still training."""
    for j, curve in enumerate(curves):
        if not failed[j]:
            curve.append(EpochMetrics(epoch, val[j], test[j], losses[j], seconds))
