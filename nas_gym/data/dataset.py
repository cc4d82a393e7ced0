"""Datasets as tensors with a fixed train / validation / test split.

The trainer slices batches straight out of these tensors (no per-sample DataLoader), so a
dataset is just six tensors and a few facts. The split is fixed by ``DataConfig.split_seed``
and never depends on the search seed: every agent and every run scores on the same
validation set, and the test set is touched only by final reports (``retrain``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from nas_gym.data.registry import dataset_spec, entry_point
from nas_gym.data.settings import DataConfig
from nas_gym.data.splits import holdout_val


@dataclass(frozen=True)
class Dataset:
    """Six tensors: inputs float32 shaped (N, C, L) for sequences or (N, C, H, W) for images,
    labels int64 shaped (N,)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def spatial_size(self) -> int:
        """Sequence length, or image side: what the search space's pooling rules need."""
        return int(self.x_train.shape[2])

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def to(self, device: torch.device | str) -> Dataset:
        return replace(self, **{f: getattr(self, f).to(device) for f in TENSORS})


TENSORS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def load_dataset(cfg: DataConfig) -> Dataset:
    """The dataset named by ``cfg``, on the CPU; move it once with ``Dataset.to(device)``.

    :raises DatasetError: one line naming the dataset, the file and the fix.
    """
    return entry_point(dataset_spec(cfg.name).loader)(cfg)


def merge_train_val(data: Dataset) -> Dataset:
    """Train and validation as one training set, for the final retraining of a chosen network.

    Once search is over the validation set has done its job (ranking), and more training data
    is worth more than a second held-out score. The validation tensors become empty rather than
    staying around, so nothing can report a score on data the model was trained on; the test
    tensors are passed through untouched (the same objects).
    """
    return replace(
        data,
        x_train=torch.cat([data.x_train, data.x_val]),
        y_train=torch.cat([data.y_train, data.y_val]),
        x_val=data.x_val[:0],
        y_val=data.y_val[:0],
    )


def split(name: str, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, cfg: DataConfig,
          num_classes: int, val: tuple[np.ndarray, np.ndarray] | None = None) -> Dataset:
    """The training set ``x, y`` split into train and validation (``val_fraction`` held out,
    then ``train_fraction`` of the rest kept, both drawn by ``split_seed``), or, when the data
    brings its own validation set ``val``, only cut to ``train_fraction``.

    Inputs keep their dtype until here (uint8 images stay small); they become float32 tensors.
    """
    train, held = holdout_val(len(y), None if val is not None else cfg.val_fraction, cfg.train_fraction, cfg.split_seed)
    x_val, y_val = val if val is not None else (x[held], y[held])

    def xt(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)

    def yt(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a), dtype=torch.int64)

    return Dataset(name, xt(x[train]), yt(y[train]), xt(x_val), yt(y_val), xt(x_test), yt(y_test), num_classes)


def standardise(data: Dataset, scale: float = 1.0) -> Dataset:
    """Per-channel zero mean, unit variance with statistics of the training split only, in place.

    ``scale`` first maps raw values to the unit the statistics are taken in (1/255 for pixels).
    Validation and test inputs must not leak into the statistics a model trains with; a
    constant channel keeps a standard deviation of 1 rather than dividing by zero.
    """
    dims = [0, *range(2, data.x_train.dim())]
    x = data.x_train
    mean = x.mean(dim=dims, keepdim=True) * scale
    std = x.std(dim=dims, keepdim=True) * scale if len(x) > 1 else torch.ones_like(mean)
    std = torch.where(std > 0, std, torch.ones_like(std))
    for t in (data.x_train, data.x_val, data.x_test):
        t.mul_(scale).sub_(mean).div_(std)
    return data
