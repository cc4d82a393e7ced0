"""Layers shared by the supernets: width-sliced convolutions and a batch norm that recalibrates.

A supernet holds, for each decision, weights at the largest width any choice needs; a choice
of a smaller width uses the leading slice (``weight[:c_out, :c_in]``), as slimmable networks
and Once-for-All do. Slicing keeps channel meanings aligned: channel 5 of a 16-wide layer is
channel 5 of the 64-wide one, so the next layer's first input slices read the same features
whatever width came before.

Batch norm cannot share running statistics between paths: each path's activations have their
own mean and variance, and statistics averaged over thousands of random paths fit none of them
(the main reason naive supernet scores rank poorly, per Guo et al.'s single-path one-shot and
Bender et al.). So :class:`PathBatchNorm` keeps none while training (batch statistics only) and,
before a path is scored, records the statistics of one calibration batch of training data for
that path alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

BNMode = Literal["train", "calibrate", "eval"]
_CONV = {1: F.conv1d, 2: F.conv2d}
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d}


def spatial_dims(input_shape: tuple[int, ...]) -> int:
    if len(input_shape) not in (2, 3):
        raise ValueError(f"input_shape must be (C, L) or (C, H, W), got {tuple(input_shape)}")
    return len(input_shape) - 1


def max_pool(x: torch.Tensor, dims: int) -> torch.Tensor:
    """The layer chain's ``maxpool``: window 2, stride 2."""
    return _MAX_POOL[dims](x, 2, 2)


def avg_pool(x: torch.Tensor, dims: int) -> torch.Tensor:
    """The layer chain's ``avgpool``: window 2, stride 2."""
    return _AVG_POOL[dims](x, 2, 2)


def box3(x: torch.Tensor) -> torch.Tensor:
    """3-wide (3x3) average, stride 1, zero padding not counted: ``AvgPool(3, 1, 1,
    count_include_pad=False)`` as shifted sums, which is several times faster than torch's
    pooling kernel for these small tensors on a CPU (the cell space's ``avgpool3``)."""
    for axis in range(2, x.dim()):
        n = x.shape[axis]
        padded = F.pad(x, (0, 0) * (x.dim() - 1 - axis) + (1, 1))
        total = padded.narrow(axis, 0, n) + padded.narrow(axis, 1, n) + padded.narrow(axis, 2, n)
        count = torch.full((n,), 3.0, dtype=x.dtype, device=x.device)
        count[0] -= 1
        count[-1] -= 1
        x = total / count.view(-1, *[1] * (x.dim() - 1 - axis))
    return x


class PathBatchNorm(nn.Module):
    """Batch norm over the first ``c`` channels of a ``max_channels``-wide layer.

    ``mode``: ``train`` normalises with the batch's statistics and keeps none; ``calibrate``
    does the same and remembers them; ``eval`` normalises with the remembered ones. The
    remembered statistics are not part of the state dict: they belong to one path.
    """

    def __init__(self, max_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(max_channels))
        self.bias = nn.Parameter(torch.zeros(max_channels))
        self.eps = eps
        self.mode: BNMode = "train"
        self._mean = torch.zeros(0)
        self._var = torch.zeros(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        weight, bias = self.weight[:c], self.bias[:c]
        if self.mode == "eval":
            self._check(c)
            return F.batch_norm(x, self._mean, self._var, weight, bias, False, 0.0, self.eps)
        if self.mode == "calibrate":
            # One pass: batch norm in training mode with momentum 1 writes the batch's mean and
            # (unbiased) variance into the buffers; rescaled to the biased variance it divided by.
            self._mean, self._var = x.new_zeros(c), x.new_ones(c)
            y = F.batch_norm(x, self._mean, self._var, weight, bias, True, 1.0, self.eps)
            n = x.numel() // c
            self._var.mul_((n - 1) / n)
            return y
        return F.batch_norm(x, None, None, weight, bias, True, 0.0, self.eps)

    def _check(self, c: int) -> None:
        if self._mean.shape[0] != c:
            raise RuntimeError("PathBatchNorm: no calibrated statistics for this path; calibrate first")

    def folded(self, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift) of the calibrated normalisation of ``c`` channels, to fold into the
        preceding convolution: scoring then runs one conv instead of a conv and a batch norm."""
        self._check(c)
        scale = self.weight[:c] * torch.rsqrt(self._var + self.eps)
        return scale, self.bias[:c] - self._mean * scale


def set_bn_mode(norms: Iterable[PathBatchNorm], mode: BNMode) -> None:
    for bn in norms:
        bn.mode = mode


class SlicedConvBN(nn.Module):
    """conv (no bias) + :class:`PathBatchNorm` (+ ReLU), at most ``max_in`` -> ``max_out`` channels;
    the input decides ``c_in``, the caller ``c_out``."""

    def __init__(self, dims: int, max_in: int, max_out: int, kernel: int, stride: int = 1, relu: bool = True) -> None:
        super().__init__()
        self.dims, self.stride, self.padding, self.relu = dims, stride, kernel // 2, relu
        self.weight = nn.Parameter(torch.empty(max_out, max_in, *([kernel] * dims)))
        # The fan-in of the widest input, like a freshly built stand-alone layer of that width.
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.bn = PathBatchNorm(max_out)

    def forward(self, x: torch.Tensor, c_out: int) -> torch.Tensor:
        weight = self.weight[:c_out, : x.shape[1]]
        if self.bn.mode == "eval":
            scale, shift = self.bn.folded(c_out)
            y = _CONV[self.dims](x, weight * scale.view(-1, *[1] * (weight.dim() - 1)), shift, self.stride,
                                 self.padding)
        else:
            y = self.bn(_CONV[self.dims](x, weight, None, self.stride, self.padding))
        return F.relu(y, inplace=True) if self.relu else y
