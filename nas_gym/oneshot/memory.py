"""Memory of the one-shot loops (DARTS, ENAS, the supernet evaluator): a batch that fits, bf16
where the GPU has it, and running out of memory as one line instead of a crash.

A supernet keeps far more activations per sample than any one network of its space: DARTS's
relaxation runs every op of every edge at once. On the ``cifar10`` preset its mixed forward keeps
268.5 MiB per sample for backward (measured with ``saved_tensors_hooks`` on a CPU:
``python scripts/bench_gpu.py --activations cifar10``), so the preset's batch of 512 would need
134 GiB. The loops therefore pick their batch from a measurement instead of the preset: the bytes
one more sample adds to what autograd saves (two small forward passes, no backward), against a
budget of half the device's free memory (4 GiB on a CPU or MPS). The preset's batch is kept
whenever it fits, which it does on every MNIST-1D preset, so their results do not change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

from nas_gym.config import RuntimeConfig
from nas_gym.training.numerics import free_memory, is_out_of_memory, precision

HOST_BUDGET = 4 * 2**30  # bytes of activations a CPU (or MPS) batch may keep
DEVICE_SHARE = 0.5  # of a GPU's free memory; the rest holds weights, gradients, optimiser state, workspace
MIN_BATCH = 2  # batch norm needs two samples

T = TypeVar("T")


def saved_bytes(loss: Callable[[int], torch.Tensor], n: int) -> int:
    """Bytes autograd keeps for backward of ``loss(n)`` (a forward pass of ``n`` samples); each
    storage counted once (a tensor saved by two ops is kept once)."""
    seen: set[tuple[int, int]] = set()
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            total += key[1]
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss(n)
    return total


def bytes_per_sample(loss: Callable[[int], torch.Tensor]) -> float:
    """What one more sample adds (the weights a forward saves do not grow with the batch)."""
    return max(1.0, (saved_bytes(loss, 4) - saved_bytes(loss, 2)) / 2)


def memory_budget(device: torch.device) -> int:
    if device.type == "cuda":
        return int(DEVICE_SHARE * torch.cuda.mem_get_info(device)[0])
    return HOST_BUDGET


def fitting_batch(loss: Callable[[int], torch.Tensor] | Sequence[Callable[[int], torch.Tensor]], wanted: int,
                  device: torch.device, budget: int | None = None) -> int:
    """``wanted`` if its activations fit the budget, else the largest power of two that does
    (at least :data:`MIN_BATCH`).

    :param loss: the loop's loss on ``n`` samples (its forward pass, under its autocast), or
        several (single-path loops: a few paths), of which the most demanding decides.
    """
    per = max(bytes_per_sample(one) for one in ([loss] if callable(loss) else loss))
    budget = memory_budget(device) if budget is None else budget
    fits = int(budget // per)
    if fits >= wanted:
        return wanted
    return max(MIN_BATCH, 1 << max(0, fits.bit_length() - 1))


def one_shot_autocast(device: torch.device, runtime: RuntimeConfig) -> Callable[[], contextlib.AbstractContextManager]:
    """The one-shot loops' autocast: bf16 where the GPU has it natively, else fp32. (fp16 would
    need loss scaling through DARTS's hand-made architecture gradients; those GPUs train the
    supernet in fp32.)"""
    if precision(device, runtime) == "bf16":
        return lambda: torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def out_of_memory_as(block: Callable[[], T], device: torch.device, error: Callable[[], Exception]) -> T:
    """``block()``; if it runs out of memory, free what it held and raise ``error()`` (one line)
    instead. A function, not a context manager: the memory is freed after the ``except`` block
    has ended, and a context manager's ``__exit__`` would still hold the traceback (and with it
    the block's activations) at that point."""
    try:
        return block()
    except (RuntimeError, MemoryError) as e:
        if not is_out_of_memory(e):
            raise
    free_memory(device)
    raise error()
