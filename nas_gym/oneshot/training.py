"""Training shared weights: endless shuffled batches and single-path weight steps.

Single-path one-shot (Guo et al., 2020): each batch trains one path of the supernet, so every
step costs what a step of one stand-alone network costs, and the paths' weights learn to work
in many contexts. The supernet evaluator draws the path uniformly; ENAS draws it from its
controller. The recipe (optimizer, learning rate, weight decay, warm-up and schedule) is the
preset's ``train`` section, the same one stand-alone networks train with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nas_gym.config import TrainConfig
from nas_gym.training.train import lr_factor, make_optimizer


class BatchStream:
    """Endless minibatches of ``(x, y)``: a fresh permutation from ``generator`` each pass, the
    ragged end dropped (a batch of one breaks batch norm). Its state is three numbers and a
    permutation, so a resumed search draws the batches an uninterrupted one would have.

    The permutation is drawn on the CPU (the same batches on every device) and copied to the data's
    device once per pass: a copy from the host per batch would wait for the GPU every step."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> None:
        self.x, self.y = x, y
        self.batch_size = min(batch_size, len(y))
        self.generator = torch.Generator().manual_seed(seed)
        self._set_perm(torch.randperm(len(y), generator=self.generator))
        self.pos = 0

    def _set_perm(self, perm: torch.Tensor) -> None:
        self.perm, self._perm_on_device = perm, perm.to(self.x.device)

    @property
    def batches_per_pass(self) -> int:
        return len(self.y) // self.batch_size

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pos + self.batch_size > len(self.y):
            self._set_perm(torch.randperm(len(self.y), generator=self.generator))
            self.pos = 0
        idx = self._perm_on_device[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return self.x[idx], self.y[idx]

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self._set_perm(state["perm"].cpu())
        self.pos = int(state["pos"])


class PathTrainer:
    """Weight steps on one path per batch, with the preset's optimizer and learning-rate
    schedule spread over ``total_steps``.

    :param net: the supernet (``forward(x, arch)``).
    :param batches: where the training batches come from.
    :param train: the preset's recipe.
    :param total_steps: the steps the schedule spans (warm-up, then decay to the last one);
        steps beyond it keep the last rate. None: the preset's rate throughout (a search whose
        length is not known in advance).
    :param autocast: the forward pass's autocast (``nas_gym.oneshot.memory.one_shot_autocast``).
    """

    def __init__(self, net: nn.Module, batches: BatchStream, train: TrainConfig, total_steps: int | None,
                 autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> None:
        self.net, self.batches, self.train, self.autocast = net, batches, train, autocast
        self.optimizer = make_optimizer(net, train)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=train.label_smoothing)
        self.total = None if total_steps is None else max(1, total_steps)
        self.warmup = 0 if self.total is None else int(train.warmup_fraction * self.total)
        self.steps = 0

    def step(self, arch: Any) -> torch.Tensor:
        """One weight step on ``arch``'s path; returns its training loss, on the device (reading
        it is a host sync: callers read a pass's losses at once)."""
        x, y = self.batches.next()
        factor = 1.0 if self.total is None else \
            lr_factor(min(self.steps, self.total - 1), self.total, self.warmup, self.train.schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = self.train.lr * factor
        if not self.net.training:
            self.net.train()
        with self.autocast():
            logits = self.net(x, arch)
        loss = self.criterion(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)  # off-path weights get no gradient, hence no decay
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        return loss.detach()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "batches": self.batches.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.batches.load_state_dict(state["batches"])
        self.steps = int(state["steps"])

