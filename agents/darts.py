"""DARTS (Liu et al., ICLR 2019): gradient descent on a continuous relaxation of the space.

Every decision (a cell's edge, a chain's position) holds a vector of architecture weights,
alpha; the supernet's ``forward_mixed`` runs every choice and sums their outputs weighted by
``softmax(alpha)`` (see ``nas_gym.spaces.cell.supernet`` and ``layer_chain_supernet`` for how
shapes agree, and how the chain's depth comes from its ``identity`` choice). Training alternates,
per training batch: one architecture step on a validation batch (alpha only), then one weight
step on the training batch (weights only; the preset's optimizer at its constant learning rate,
since a search's length is not known when it starts). The architecture is the argmax of each row of alpha
(``Supernet.derive``).

First order by default (alpha's gradient at the current weights, DARTS-V1). ``second_order``
unrolls one virtual weight step (a plain gradient step of size ``train.lr``, where DARTS used its
SGD's momentum) and corrects alpha's gradient with a finite-difference Hessian-vector product,
as in the paper (DARTS-V2): about three times the cost of a first-order step.

Episodes: each episode runs ``epochs_per_episode`` epochs of search, then plays the derived
architecture through the env, where the preset's evaluator (real training, the table) scores
and charges it like any agent's; the search's own seconds are charged to the same clock. So
``--episodes 30`` is a 30-epoch search whose run record shows the derived architecture after
every epoch, and the last one is DARTS's answer. Each epoch's softmax(alpha) goes to TensorBoard
as a heat map (``darts/alpha`` in the run's ``darts`` folder), with the two losses.

Known weakness, measured in ``docs/one_shot.md``: on NAS-Bench-201-style cells DARTS tends to
collapse to parameter-free ops (skip connections).
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from nas_gym.agents.base import AgentError, BaseAgent, make_hparams, play
from nas_gym.oneshot.agents import charged, one_shot_setup, summary_writer
from nas_gym.oneshot.memory import fitting_batch, one_shot_autocast, out_of_memory_as
from nas_gym.oneshot.training import BatchStream
from nas_gym.storage.atomic import atomic_write
from nas_gym.training.train import forked_rng, make_optimizer


def alpha_heatmap(probs: np.ndarray, rows: tuple[str, ...], columns: tuple[str, ...], title: str):
    """softmax(alpha) as a matplotlib heat map: decisions down, choices across, values written in."""
    import matplotlib

    matplotlib.use("Agg")  # searches run on headless machines
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(columns), 0.8 + 0.45 * len(rows)), dpi=100)
    ax.imshow(probs, cmap="viridis", vmin=0.0, vmax=max(float(probs.max()), 1e-6), aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for (i, j), p in np.ndenumerate(probs):
        ax.text(j, i, f"{p:.2f}", ha="center", va="center", fontsize=7, color="white" if p < probs.max() / 2 else "black")
    ax.set_title(title)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class DartsArgs:
    """:param epochs_per_episode: epochs of search (passes over the training split) per episode.
    :param arch_lr: Adam's step size for alpha. DARTS used 3e-4 over 50 epochs of CIFAR-10
        (~20,000 steps); the few hundred steps of a search here need a larger one to move alpha at all.
    :param arch_weight_decay: L2 on alpha (DARTS: 1e-3).
    :param second_order: unrolled architecture gradient (DARTS-V2) instead of first order.
    :param init_scale: alpha starts at ``init_scale * N(0, 1)``: almost uniform, seed-dependent ties.
    :param batch_size: training and validation batch of the search; 0 means the preset's
        ``train.batch_size`` lowered to what fits in memory (``nas_gym.oneshot.memory``: the
        relaxation keeps every op's activations, 268.5 MiB per sample on ``cifar10``).
    """

    epochs_per_episode: int = 1
    arch_lr: float = 1e-2
    arch_weight_decay: float = 1e-3
    second_order: bool = False
    init_scale: float = 1e-3
    batch_size: int = 0


class Darts(BaseAgent):
    """:param env: a NasGym env whose space builds a supernet (layer chain, cell).
    :param seed: seeds the weights, alpha and the batch order.
    :param hparams: fields of :class:`DartsArgs`.
    :param logdir: the run folder: the alpha heat maps go to ``logdir/darts``.
    """
    trains_supernet: ClassVar[bool] = True  # no table replays it: the leaderboard names it absent (nas_gym.runs.board_absent)

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        self.env, self.seed, self.logdir = env, seed, logdir
        self.args: DartsArgs = make_hparams(DartsArgs, hparams)
        if self.args.epochs_per_episode < 1 or self.args.arch_lr <= 0 or self.args.batch_size < 0:
            raise AgentError(f"darts: need epochs_per_episode >= 1, arch_lr > 0 and batch_size >= 0; got {self.args}")
        try:
            self.setup = one_shot_setup(self.context.config, self.context.space, seed)
        except ValueError as e:
            raise AgentError(str(e)) from None
        net, data, train = self.setup.net, self.setup.data, self.setup.config.train
        gen = torch.Generator().manual_seed(seed)
        self.alpha = (self.args.init_scale * torch.randn(net.decision_shape, generator=gen)).to(self.setup.device)
        self.alpha.requires_grad_(True)
        self.weight_opt = make_optimizer(net, train)
        self.arch_opt = torch.optim.Adam([self.alpha], lr=self.args.arch_lr, betas=(0.5, 0.999),
                                         weight_decay=self.args.arch_weight_decay)
        # bf16 where native; the second-order gradient's finite differences stay in fp32.
        self._autocast = contextlib.nullcontext if self.args.second_order else \
            one_shot_autocast(self.setup.device, self.setup.config.runtime)
        self.batch_size = self.args.batch_size or self._fitting_batch(train.batch_size)
        self.train_batches = BatchStream(data.x_train, data.y_train, self.batch_size, seed)
        self.val_batches = BatchStream(data.x_val, data.y_val, self.batch_size, seed + 1)
        self.epochs_done = 0
        self.episodes_done = 0
        self._writer = None

    def _fitting_batch(self, wanted: int) -> int:
        """The preset's batch, or the largest that fits (measured on a copy: the measurement's
        forward passes must not move the real batch norm's statistics or the random streams)."""
        net, x, y = copy.deepcopy(self.setup.net), self.setup.data.x_train, self.setup.data.y_train

        def loss(n: int) -> torch.Tensor:
            with self._autocast():
                logits = net.forward_mixed(x[:n], F.softmax(self.alpha, dim=-1))
            return F.cross_entropy(logits.float(), y[:n])

        with forked_rng(self.setup.device):
            return fitting_batch(loss, wanted, self.setup.device)

    # -- one search step ----------------------------------------------------------------------
    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            logits = self.setup.net.forward_mixed(x, F.softmax(self.alpha, dim=-1))
        return F.cross_entropy(logits.float(), y)

    def _second_order_grad(self, xt: torch.Tensor, yt: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """Alpha's gradient through one virtual weight step (DARTS eq. 7-8), and the validation loss."""
        params = list(self.setup.net.parameters())
        xi = self.setup.config.train.lr

        def grads(loss: torch.Tensor, wrt: list[torch.Tensor]) -> list[torch.Tensor]:
            found = torch.autograd.grad(loss, wrt, allow_unused=True)
            return [torch.zeros_like(w) if g is None else g for g, w in zip(found, wrt, strict=True)]

        backup = [p.detach().clone() for p in params]
        train_grads = grads(self._loss(xt, yt), params)
        with torch.no_grad():
            for p, g in zip(params, train_grads, strict=True):
                p.sub_(xi * g)
        val_loss = self._loss(xv, yv)
        alpha_grad, *v = grads(val_loss, [self.alpha, *params])
        eps = 0.01 / torch.sqrt(sum((g * g).sum() for g in v)).clamp_min(1e-12)
        hessian = []
        for sign in (1.0, -1.0):  # grad_alpha L_train at w + eps v, then at w - eps v
            with torch.no_grad():
                for p, b, g in zip(params, backup, v, strict=True):
                    p.copy_(b + sign * eps * g)
            hessian.append(grads(self._loss(xt, yt), [self.alpha])[0])
        with torch.no_grad():
            for p, b in zip(params, backup, strict=True):
                p.copy_(b)
        return alpha_grad - xi * (hessian[0] - hessian[1]) / (2 * eps), val_loss.detach()

    def _step(self) -> torch.Tensor:
        """One architecture step on a validation batch, then one weight step on a training batch;
        the two losses, left on the device (read once per pass, not once per step)."""
        xt, yt = self.train_batches.next()
        xv, yv = self.val_batches.next()
        if not self.setup.net.training:
            self.setup.net.train()
        if self.args.second_order:
            alpha_grad, val_loss = self._second_order_grad(xt, yt, xv, yv)
        else:
            loss = self._loss(xv, yv)
            alpha_grad, val_loss = torch.autograd.grad(loss, [self.alpha])[0], loss.detach()
        self.arch_opt.zero_grad(set_to_none=True)
        self.alpha.grad = alpha_grad
        self.arch_opt.step()
        self.weight_opt.zero_grad(set_to_none=True)
        weights = F.softmax(self.alpha.detach(), dim=-1)
        with self._autocast():
            logits = self.setup.net.forward_mixed(xt, weights)
        loss = F.cross_entropy(logits.float(), yt)
        loss.backward()
        self.weight_opt.step()
        return torch.stack([loss.detach(), val_loss])

    def _epoch(self) -> None:
        losses = torch.stack([self._step() for _ in range(self.train_batches.batches_per_pass)])
        self.epochs_done += 1
        if self.logdir is not None:
            self._log(losses.mean(0).cpu().numpy())

    # -- what it returns ----------------------------------------------------------------------
    def probabilities(self) -> np.ndarray:
        """softmax(alpha): one row per decision, one column per choice."""
        return F.softmax(self.alpha.detach(), dim=-1).cpu().numpy()

    def derived(self) -> Any:
        """The architecture DARTS returns now: the argmax of every row (``Supernet.derive``)."""
        return self.setup.net.derive(self.probabilities())

    def learn(self, episodes: int) -> None:
        for _ in range(episodes):
            with charged(self.context.charge_seconds, self.setup, self.seed + self.epochs_done):
                for _ in range(self.args.epochs_per_episode):
                    out_of_memory_as(self._epoch, self.setup.device, self._memory_error)
            play(self.env, self.derived())
            self.episodes_done += 1

    def _memory_error(self) -> AgentError:
        return AgentError(f"darts ran out of memory on {self.setup.device} at batch {self.batch_size}; "
                          f"pass a smaller one, e.g. --hparams '{{batch_size: {max(2, self.batch_size // 2)}}}'")

    # -- TensorBoard --------------------------------------------------------------------------
    def _log(self, losses: np.ndarray) -> None:
        if self._writer is None:
            self._writer = summary_writer(self.logdir, "darts", purge_step=self.epochs_done)
        net, step = self.setup.net, self.epochs_done
        self._writer.add_figure("darts/alpha", alpha_heatmap(self.probabilities(), net.decisions, net.choices,
                                                             f"softmax(alpha) after epoch {step}"), step)
        self._writer.add_scalar("darts/train_loss", float(losses[0]), step)
        self._writer.add_scalar("darts/val_loss", float(losses[1]), step)
        self._writer.flush()

    # -- checkpoints --------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Weights, alpha, both optimizers, batch streams and counters, written atomically."""
        state = {"net": self.setup.net.state_dict(), "alpha": self.alpha.detach(),
                 "weight_opt": self.weight_opt.state_dict(), "arch_opt": self.arch_opt.state_dict(),
                 "train_batches": self.train_batches.state_dict(), "val_batches": self.val_batches.state_dict(),
                 "epochs_done": self.epochs_done, "episodes_done": self.episodes_done}
        atomic_write(path, lambda f: torch.save(state, f))

    def load(self, path: str | Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)  # CPU first: generator states must stay there
        self.setup.net.load_state_dict(state["net"])
        with torch.no_grad():
            self.alpha.copy_(state["alpha"])
        self.weight_opt.load_state_dict(state["weight_opt"])
        self.arch_opt.load_state_dict(state["arch_opt"])
        self.train_batches.load_state_dict(state["train_batches"])
        self.val_batches.load_state_dict(state["val_batches"])
        self.epochs_done, self.episodes_done = int(state["epochs_done"]), int(state["episodes_done"])
