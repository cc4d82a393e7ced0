"""Datasets as tensors with a fixed train / validation / test split.

The trainer slices batches straight out of these tensors (no per-sample DataLoader), so a
dataset is just six tensors and a few facts. The split is fixed by ``DataConfig.split_seed``
and never depends on the search seed: every agent and every run scores on the same
validation set, and the test set is touched only by final reports (``retrain``).
"""

from __future__ import annotations

import hashlib
import os
import random
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from nas_gym.config import DataConfig


class DatasetError(ValueError):
    """A dataset that cannot be loaded; one line naming the dataset, the path and the fix."""


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
        return replace(self, **{f: getattr(self, f).to(device) for f in _TENSORS})


_TENSORS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


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


def default_root() -> Path:
    return Path(os.environ.get("NAS_GYM_DATA", Path.home() / ".cache" / "nas-gym" / "data"))


def _split(name: str, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
           cfg: DataConfig, num_classes: int) -> Dataset:
    """Hold out ``val_fraction`` of the official training set, then keep ``train_fraction``
    of the rest; both draws come from a generator seeded by ``split_seed``."""
    rng = np.random.default_rng(cfg.split_seed)
    order = rng.permutation(len(y))
    n_val = max(1, int(round(len(y) * cfg.val_fraction)))
    val, train = order[:n_val], order[n_val:]
    train = train[: max(1, int(round(len(train) * cfg.train_fraction)))]

    def xt(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)

    def yt(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a), dtype=torch.int64)

    return Dataset(name, xt(x[train]), yt(y[train]), xt(x[val]), yt(y[val]), xt(x_test), yt(y_test), num_classes)


def _mnist1d_arrays(root: Path) -> tuple[np.ndarray, ...]:
    """Generate MNIST-1D offline (seed 42, 4,000 train / 1,000 test, length 40) and cache it.

    ``make_dataset`` seeds numpy's and Python's global generators; their states are saved and
    restored so that loading data never changes anyone else's randomness.
    """
    path = root / "mnist1d_seed42.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return z["x"], z["y"], z["x_test"], z["y_test"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise DatasetError(f"mnist1d: cached file {path} is corrupt ({type(e).__name__}); delete it to regenerate") from None
    from mnist1d.data import get_dataset_args, make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (d["x"].astype(np.float32), d["y"].astype(np.int64), d["x_test"].astype(np.float32), d["y_test"].astype(np.int64))
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".mnist1d.{os.getpid()}.npz"
        np.savez(tmp, x=arrays[0], y=arrays[1], x_test=arrays[2], y_test=arrays[3])
        tmp.replace(path)  # atomic: concurrent workers never read a half-written file
    except OSError:
        pass  # a read-only cache folder only costs a regeneration next time
    return arrays


def load_mnist1d(cfg: DataConfig) -> Dataset:
    root = Path(cfg.root) if cfg.root else default_root()
    x, y, x_test, y_test = _mnist1d_arrays(root)
    return _split("mnist1d", x[:, None, :], y, x_test[:, None, :], y_test, cfg, 10)


def load_digits(cfg: DataConfig) -> Dataset:
    """scikit-learn's bundled 8x8 digits; a fixed 20% test split, pixels scaled to zero mean."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images.astype(np.float32) / 16.0 - 0.5) / 0.5
    y = d.target.astype(np.int64)
    order = np.random.default_rng(12345).permutation(len(y))  # fixed, independent of split_seed
    n_test = len(y) // 5
    test, train = order[:n_test], order[n_test:]
    return _split("digits", x[train][:, None], y[train], x[test][:, None], y[test], cfg, 10)


def load_dataset(cfg: DataConfig) -> Dataset:
    """The dataset named by ``cfg``, on the CPU; move it once with ``Dataset.to(device)``."""
    if cfg.name == "mnist1d":
        return load_mnist1d(cfg)
    if cfg.name == "digits":
        return load_digits(cfg)
    from nas_gym.vision_data import load_vision

    return load_vision(cfg)


def fingerprint(data: Dataset) -> str:
    """A digest of the tensors' shapes and a sample of values: detects a changed dataset."""
    h = hashlib.sha256(data.name.encode())
    for f in _TENSORS:
        t = getattr(data, f)
        h.update(str(tuple(t.shape)).encode())
        h.update(t.flatten()[:: max(1, t.numel() // 4096)].cpu().numpy().tobytes())
    return h.hexdigest()[:20]
