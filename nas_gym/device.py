"""Which torch device a run uses. Apart from the trainer so that modules the config imports
(the latency model's checks) can resolve a device without importing the trainer, which imports
the config."""

from __future__ import annotations

import torch


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
