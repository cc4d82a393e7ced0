"""What decides a training run's numbers on an accelerator, beyond the recipe: precision, TF32,
determinism; and what the trainer does about memory and dead devices.

The CPU trainer computes in fp32 with deterministic kernels, so on a CPU none of this matters and
:func:`numerics_identity` is empty: cache keys of CPU results stay what they were before it
existed. On CUDA, bf16 autocast, TF32 convolutions (PyTorch's default for cuDNN) and the
non-deterministic kernels each move an accuracy by as much as a change of seed, so they join the
cache key. The device type is in the key too, for a reason of its own: augmentation and dropout
draw from generators on the training device (``nas_gym.training.fit``, ``MemberDropout``), and a CUDA
generator's stream differs from a CPU generator's with the same seed. The GPU model is not in
the key: within one precision it changes results by kernel choice only, as two CPUs' BLAS do.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from nas_gym.config import RuntimeConfig
from nas_gym.errors import NasGymError

# cuBLAS needs a fixed workspace to give the same bits twice (see CUDA's cuBLAS docs,
# "Results reproducibility"); read when a cuBLAS handle is created, so set before the first matmul.
CUBLAS_ENV, CUBLAS_DETERMINISTIC = "CUBLAS_WORKSPACE_CONFIG", ":4096:8"
# Messages of CUDA errors that leave the process's context unusable: every later kernel fails.
_STICKY = ("device-side assert", "illegal memory access", "unspecified launch failure", "misaligned address",
           "illegal instruction", "uncorrectable ecc")


class DeviceLostError(NasGymError, RuntimeError):
    """The CUDA context of this process is dead (a device-side assert, an illegal access): nothing
    more can train in it. Not an architecture's failure: a worker exits so that its pool starts a
    fresh process and retries the architecture; the serial trainer stops the search (it resumes)."""


def _capability_major(device: torch.device) -> int:
    return torch.cuda.get_device_capability(device)[0] if device.type == "cuda" else 0


def precision(device: torch.device, runtime: RuntimeConfig) -> str:
    """``fp32``, ``bf16`` or ``fp16``: what the trainer's autocast computes in.

    bf16 only where it is native (compute capability 8.0 and up: A100, RTX 30xx and later);
    ``torch.cuda.is_bf16_supported`` also says yes for emulated bf16 on a V100 or T4, which is
    slower than fp32 there. Those GPUs get fp16 with loss scaling instead (:class:`LossScaler`).
    """
    if device.type != "cuda" or not runtime.amp:
        return "fp32"
    return "bf16" if _capability_major(device) >= 8 else "fp16"


def tf32_active(device: torch.device, runtime: RuntimeConfig) -> bool:
    """Whether TF32 takes effect: asked for, and a GPU that has it (capability 8.0 and up)."""
    return device.type == "cuda" and runtime.tf32 and _capability_major(device) >= 8


def numerics_identity(runtime: RuntimeConfig, device: torch.device) -> dict[str, Any]:
    """What joins the cache key besides the recipe: empty on a CPU (results do not depend on
    the runtime there), else the device type and the settings that change its numbers."""
    if device.type == "cpu":
        return {}
    if device.type != "cuda":
        return {"device": device.type}
    return {"device": "cuda", "precision": precision(device, runtime), "tf32": tf32_active(device, runtime),
            "deterministic": runtime.deterministic}


@contextlib.contextmanager
def numerics_settings(device: torch.device, runtime: RuntimeConfig) -> Iterator[None]:
    """The CUDA flags of one training run, put back afterwards (they are process-global).

    Without ``deterministic``: cuDNN autotuning on (shapes are fixed within a run, so it pays
    off). With it: autotuning off, cuDNN's deterministic algorithms, ``torch.use_deterministic_
    algorithms(True)`` (an op with no deterministic CUDA kernel then raises instead of silently
    varying) and the cuBLAS workspace setting. On a CPU nothing is touched.
    """
    if device.type != "cuda":
        yield
        return
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32, matmul.allow_tf32,
             torch.are_deterministic_algorithms_enabled())
    cudnn.benchmark = not runtime.deterministic
    cudnn.allow_tf32 = matmul.allow_tf32 = runtime.tf32
    if runtime.deterministic:
        os.environ.setdefault(CUBLAS_ENV, CUBLAS_DETERMINISTIC)
        cudnn.deterministic = True
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32, matmul.allow_tf32 = saved[:4]
        torch.use_deterministic_algorithms(saved[4])


class LossScaler:
    """Dynamic loss scaling for fp16 (bf16 and fp32 need none), for the trainer's functional
    optimiser step, which ``torch.amp.GradScaler`` cannot drive (it wants an ``Optimizer``).

    The loss is multiplied by the scale before backward; the gradients are divided by it after,
    and a step whose gradients overflowed is skipped and the scale halved; after ``interval``
    good steps it doubles, as GradScaler's defaults do. Checking for overflow costs one host sync
    per step, on the fp16 path only (GradScaler pays the same).
    """

    def __init__(self, enabled: bool, scale: float = 2.0**16, interval: int = 2000) -> None:
        self.enabled, self.value, self.interval, self._good = enabled, scale, interval, 0

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        return loss * self.value if self.enabled else loss

    @torch.no_grad()
    def unscale(self, params: Iterable[nn.Parameter]) -> bool:
        """Divide the gradients by the scale; False (skip the step) if any is not finite."""
        if not self.enabled:
            return True
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return True
        torch._foreach_mul_(grads, 1.0 / self.value)
        finite = bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())
        if finite:
            self._good += 1
            if self._good >= self.interval:
                self.value, self._good = self.value * 2.0, 0
        else:
            self.value, self._good = self.value / 2.0, 0
        return finite


class MeanPool(nn.Module):
    """Global average pooling as a mean over positions, ``(N, C, ...) -> (N, C, 1, ...)``: its
    backward is an expand, deterministic on CUDA, where adaptive average pooling's backward
    accumulates with atomics (and raises under ``torch.use_deterministic_algorithms``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)


def deterministic_pooling(model: nn.Module) -> int:
    """Replace every adaptive average pooling to size 1 in ``model`` by :class:`MeanPool` (no
    weights: nothing else changes); returns how many. Used for deterministic CUDA runs only, so
    CPU results keep their bits."""
    swaps = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
                size = child.output_size if isinstance(child.output_size, tuple) else (child.output_size,)
                if all(s == 1 for s in size):
                    swaps.append((parent, name))
    for parent, name in swaps:
        setattr(parent, name, MeanPool())
    return len(swaps)


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's own error class, Python's MemoryError for host memory, and the plain RuntimeErrors
    that MPS and older CUDA paths raise."""
    oom = (getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), torch.cuda.OutOfMemoryError, MemoryError)
    return isinstance(error, oom) or (isinstance(error, RuntimeError) and "out of memory" in str(error))


def is_device_lost(error: BaseException) -> bool:
    """Whether ``error`` left the CUDA context dead (see :class:`DeviceLostError`)."""
    if isinstance(error, DeviceLostError):
        return True
    text = str(error).lower()
    return (isinstance(error, RuntimeError) and not is_out_of_memory(error)
            and ("cuda error" in text or "acceleratorerror" in type(error).__name__.lower())
            and any(marker in text for marker in _STICKY))


def free_memory(device: torch.device) -> None:
    """Give back what a failed run held. Call it after the ``except`` block has ended: inside
    it, the traceback still references the frames that hold the activations."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def runtime_record(runtime: RuntimeConfig) -> dict[str, Any]:
    """Where a run trains, for its run folder (``runtime.json``): the device, the GPU, the
    CUDA and cuDNN versions and the precision, so a result can be traced to its hardware."""
    from nas_gym.training.device import resolve_device

    record: dict[str, Any] = {"requested": runtime.device, "torch": torch.__version__, "host": platform.node(),
                              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    try:
        device = resolve_device(runtime.device)
    except ValueError as e:
        return {**record, "error": str(e)}
    record.update(device=str(device), precision=precision(device, runtime), tf32=tf32_active(device, runtime),
                  deterministic=runtime.deterministic, threads=runtime.threads)
    if device.type == "cuda":
        record.update(gpu=torch.cuda.get_device_name(device),
                      capability=".".join(map(str, torch.cuda.get_device_capability(device))),
                      cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                      gpu_count=torch.cuda.device_count())
    else:
        record["cpu"] = platform.processor() or platform.machine()
    return record
