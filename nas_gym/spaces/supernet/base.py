"""What every supernet answers, and how one path is scored.

A supernet (built by the space: ``SearchSpace.build_supernet``) is one ``nn.Module`` holding
the weights of every architecture of its space. It runs in two ways:

- ``forward(x, arch)``: one path, the network of ``arch`` (single-path one-shot training, the
  supernet evaluator, ENAS);
- ``forward_mixed(x, weights)``: DARTS's continuous relaxation, every choice of every decision
  at once, each weighted by a row of ``weights`` (shape ``decision_shape``, rows summing to 1);
  ``derive(weights)`` turns such weights back into a valid architecture (argmax per decision).

The architecture weights (DARTS's alphas) are not part of the supernet: whoever searches owns
them, so the supernet's parameters are its network weights only.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from nas_gym.spaces.supernet.layers import PathBatchNorm, set_bn_mode


@runtime_checkable
class Supernet(Protocol):
    """:ivar decisions: one label per row of the relaxation (``position 0``, ``edge 0->1``).
    :ivar choices: one label per column (the ops, and for the layer chain ``identity``).
    :ivar norms: every :class:`PathBatchNorm`, for switching their mode at once.
    """

    decisions: tuple[str, ...]
    choices: tuple[str, ...]
    norms: tuple[PathBatchNorm, ...]

    @property
    def decision_shape(self) -> tuple[int, int]: ...

    def forward(self, x: torch.Tensor, arch: Any) -> torch.Tensor: ...

    def forward_mixed(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor: ...

    def derive(self, weights: np.ndarray) -> Any: ...

    def count_params(self, arch: Any) -> int:
        """Trainable parameters of ``arch``'s stand-alone network."""

    def parameters(self, recurse: bool = True): ...


@torch.no_grad()
def score_path(net: Supernet, arch: Any, calib_x: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor
               ) -> float:
    """Accuracy of ``arch``'s path on ``val_x``, after recalibrating its batch norm on ``calib_x``
    (training data: validation data must not shape the statistics it is scored with).

    Dropout is off, so a score is a deterministic function of the weights, the path and the two
    batches. The net is left in eval mode: switching a module tree's mode walks every submodule,
    which cost more than scoring a small path (trainers switch back, see ``PathTrainer``).
    """
    if net.training:
        net.eval()
    try:
        set_bn_mode(net.norms, "calibrate")
        net(calib_x, arch)
        set_bn_mode(net.norms, "eval")
        return float((net(val_x, arch).argmax(1) == val_y).float().mean())
    finally:
        set_bn_mode(net.norms, "train")
