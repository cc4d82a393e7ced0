"""The trainer's optimiser step: torch's functional AdamW / Adam / SGD, fused where supported.

Why not ``torch.optim.AdamW`` itself: on the small networks a search meets, the optimiser is a
visible share of a training step, and two costs sit outside the arithmetic. (1) The ``Optimizer``
class wraps every step in profiler records, hook lookups and a per-step scan of its parameter
groups: measured here, one AdamW step over a 17-tensor network took 120 us through the class and
78 us through the same fused kernel called as a function (418 us for the class's ``foreach``
path, which the trainer used before). (2) Constructing any ``Optimizer`` imports ``torch._dynamo``
(1.4-2 s, once per process): that was most of the first evaluation's warm-up in every worker.
The functional forms (``torch.optim.adamw.adamw`` and friends, public in their modules'
``__all__``) run the same kernels as the classes, with the same defaults, and import nothing.

The fused kernels run on CPUs from torch 2.4 on (and on CUDA); elsewhere the ``foreach`` path is
used. Results equal the classes' with the same flags (tested).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.adam import adam
from torch.optim.adamw import adamw
from torch.optim.sgd import sgd
from torch.torch_version import TorchVersion

from nas_gym.config import TrainConfig

# torch.optim's own defaults, which the classes would use.
_BETAS, _EPS = (0.9, 0.999), 1e-8
_FUSED_CPU = TorchVersion(torch.__version__) >= "2.4"


def fused_supported(device: torch.device) -> bool:
    return device.type == "cuda" or (device.type == "cpu" and _FUSED_CPU)


class Stepper:
    """Optimiser state for one training run and its step at a given learning rate.

    Parameters without a gradient at a step are skipped, as ``torch.optim`` skips them (no decay,
    no moment update, no step count).
    """

    def __init__(self, params: Iterable[nn.Parameter], config: TrainConfig, device: torch.device) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.config = config
        self.fused = fused_supported(device)
        self.momentum: list[torch.Tensor | None] = [None] * len(self.params)
        if config.optimizer != "sgd":
            self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
            self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
            # float32 step counters on the parameters' device, as the classes keep them for fused kernels
            self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: float) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return

        def pick(items: list) -> list:
            return items if len(live) == len(items) else [items[i] for i in live]

        params = pick(self.params)
        grads = [p.grad for p in params]
        cfg, fused = self.config, self.fused
        kind = {"fused": True, "foreach": False} if fused else {"fused": None, "foreach": True}
        if cfg.optimizer == "sgd":
            buffers = pick(self.momentum)
            sgd(params, grads, buffers, weight_decay=cfg.weight_decay, momentum=cfg.momentum, lr=lr, dampening=0.0,
                nesterov=cfg.momentum > 0, maximize=False, **kind)
            for i, buf in zip(live, buffers, strict=True):  # the first step creates the buffers
                self.momentum[i] = buf
            return
        step_fn = adamw if cfg.optimizer == "adamw" else adam
        step_fn(params, grads, pick(self.exp_avg), pick(self.exp_avg_sq), [], pick(self.steps), amsgrad=False,
                beta1=_BETAS[0], beta2=_BETAS[1], lr=lr, weight_decay=cfg.weight_decay, eps=_EPS, maximize=False,
                **kind)
