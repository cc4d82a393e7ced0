"""Which torch device a run uses. Apart from the trainer so that modules the config imports
(the latency model's checks) can resolve a device without importing the trainer, which imports
the config."""

from __future__ import annotations

import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> cuda if available, else mps, else cpu; an explicit device must exist
    (``cuda:N`` within the visible devices).

    A bare ``cuda`` gets its index filled in, so comparing it with a tensor's device works.
    :raises ValueError: if the requested accelerator is not available.
    """
    mps = getattr(torch.backends, "mps", None)
    mps_ok = mps is not None and mps.is_available()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device {device!r} is not one of auto, cpu, cuda, cuda:N, mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available; use device 'auto' or 'cpu'")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {device!r} requested but only {count} CUDA device(s) are visible; "
                             f"use cuda or cuda:0 to cuda:{count - 1}")
        return torch.device("cuda", torch.cuda.current_device() if dev.index is None else dev.index)
    if dev.type == "mps" and not mps_ok:
        raise ValueError(f"device {device!r} requested but MPS is not available; use device 'auto' or 'cpu'")
    return dev
