"""Which GPUs the workers of a search get, decided in the driver before any worker starts.

Torch-free on purpose: the process pool starts its workers before the driver imports torch (the
workers' start-up then overlaps the driver's), so the GPUs are counted the way CUDA itself
counts them for a process, from ``CUDA_VISIBLE_DEVICES`` or, when that is unset, from
``nvidia-smi -L``. Each worker is then started with ``CUDA_VISIBLE_DEVICES`` naming its own GPU,
so it sees only that one (as Ray does for its actors), and a request for more GPUs than there
are is refused with one line before anything starts: otherwise Ray's actors would wait forever
for GPUs that do not exist, holding their tasks.

One worker per GPU by default; ``evaluator.gpus_per_eval`` below 1 packs ``1 / fraction``
workers on each GPU (docs/gpu.md says when NVIDIA MPS is worth it for that).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from nas_gym.config import ConfigError

VISIBLE_ENV = "CUDA_VISIBLE_DEVICES"


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as entries for ``CUDA_VISIBLE_DEVICES`` (indices or UUIDs).

    CUDA stops reading the variable at its first invalid entry (``-1`` hides every GPU); without
    the variable every GPU ``nvidia-smi`` lists is visible, and a host without it has none.
    """
    spec = os.environ.get(VISIBLE_ENV)
    if spec is not None:
        ids = []
        for part in (p.strip() for p in spec.split(",")):
            if not part or part.startswith("-"):
                break
            ids.append(part)
        return ids
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, _ in enumerate(line for line in listing.splitlines() if line.startswith("GPU "))]


def wants_gpu(device: str) -> bool:
    """Whether ``runtime.device`` trains on a CUDA GPU when one is there."""
    return device == "auto" or device.startswith("cuda")


def gpus_per_worker(device: str, requested: float | None, available: int) -> float:
    """``evaluator.gpus_per_eval`` made definite: None means one GPU per worker when GPUs are
    there and the device may use them, else none.

    :raises ConfigError: the device and the request contradict each other.
    """
    if requested is None:
        return 1.0 if wants_gpu(device) and available > 0 else 0.0
    if requested == 0 and device.startswith("cuda"):
        raise ConfigError(f"evaluator.gpus_per_eval is 0 but runtime.device is {device!r}: the workers would get no "
                          "GPU; set gpus_per_eval to 1 (or a fraction), or runtime.device to cpu")
    if requested > 0 and device in ("cpu", "mps"):
        raise ConfigError(f"evaluator.gpus_per_eval is {requested:g} but runtime.device is {device!r}: the workers "
                          "would hold GPUs they never use; set gpus_per_eval to 0 or runtime.device to cuda")
    return requested


def gpus_needed(workers: int, per_worker: float) -> int:
    """GPUs ``workers`` workers need when each holds ``per_worker`` of one (packed whole)."""
    if per_worker <= 0:
        return 0
    per_gpu = max(1, math.floor(1.0 / per_worker + 1e-9))
    return math.ceil(workers / per_gpu)


def check_request(workers: int, per_worker: float, available: int, where: str) -> None:
    """:raises ConfigError: ``workers`` at ``per_worker`` GPUs each do not fit on ``available``."""
    need = gpus_needed(workers, per_worker)
    if need > available:
        raise ConfigError(f"evaluator.workers {workers} at gpus_per_eval {per_worker:g} need {need} GPU(s) but "
                          f"{where} has {available}; lower evaluator.workers, set gpus_per_eval to a fraction "
                          "(several workers per GPU, see docs/gpu.md) or to 0 (CPU)")


def worker_gpus(device: str, workers: int, requested: float | None,
                visible: Sequence[str] | None = None) -> list[str] | None:
    """``CUDA_VISIBLE_DEVICES`` for each worker of a process pool, or None to leave it alone
    (a CPU or MPS device). ``""`` hides every GPU: ``auto`` then trains on the CPU.

    Worker ``i`` gets GPU ``i // per_gpu``, so the first GPUs fill first; ``cuda:N`` puts every
    worker on GPU N.

    :raises ConfigError: more GPUs asked for than there are, or no GPU N.
    """
    if not wants_gpu(device):
        gpus_per_worker(device, requested, 0)  # a GPU request with a CPU device is refused
        return None
    visible = visible_gpus() if visible is None else list(visible)
    if device.startswith("cuda:"):
        index = int(device.partition(":")[2])
        if index >= len(visible):
            raise ConfigError(f"runtime.device {device!r}: only {len(visible)} GPU(s) are visible; "
                              f"use cuda or a GPU index below {len(visible)}" if visible else
                              f"runtime.device {device!r}: no GPU is visible; use device auto or cpu")
        visible = [visible[index]]
    per_worker = gpus_per_worker(device, requested, len(visible))
    if per_worker == 0:
        return [""] * workers
    check_request(workers, per_worker, len(visible), f"{device} (one GPU)" if device.startswith("cuda:") else "this host")
    per_gpu = max(1, math.floor(1.0 / per_worker + 1e-9))
    return [visible[i // per_gpu] for i in range(workers)]


def claim_gpu(counter: Any, gpus: Sequence[str]) -> str:
    """Give the calling process the next GPU of ``gpus`` in turn (``counter``: a shared
    ``multiprocessing.Value``), so parallel runs (``compare --workers``) spread over the GPUs;
    must run before the process first uses CUDA."""
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    gpu = gpus[index % len(gpus)]
    os.environ[VISIBLE_ENV] = gpu
    return gpu
