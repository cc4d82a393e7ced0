"""torchvision image datasets (MNIST, Fashion-MNIST, CIFAR-10/100, SVHN) read from a local folder.

The files are parsed by torchvision's own dataset classes, so the folder layout is exactly the
one ``torchvision.datasets`` uses and a root shared with other projects just works. The decoded
arrays are taken straight off the dataset objects (``.data``, ``.targets`` / ``.labels``) instead
of iterating samples through PIL, which would take minutes for CIFAR.

Integrity: torchvision hashes every CIFAR and SVHN file (about 180 MB each) with md5 on every
load. Here that hash is skipped when *loading*, and kept where it matters, when a file arrives
over the network: ``download`` still verifies the archive against torchvision's md5. A truncated
or garbage file is caught anyway, because it fails to parse or decodes to inconsistent arrays,
and both become a one-line :class:`~nas_gym.data.base.DatasetError`. Skipping the hash also means the
tests run the very same code path as real users on tiny, hand-written files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10, CIFAR100, MNIST, SVHN, FashionMNIST

from nas_gym.data.base import DatasetError, default_root
from nas_gym.data.dataset import Dataset, split
from nas_gym.data.registry import DATASETS
from nas_gym.data.settings import DataConfig

Arrays = tuple[np.ndarray, np.ndarray]
"""uint8 images shaped (N, C, H, W) and int64 labels shaped (N,)."""


class _FilesOnlyCifar:
    """Mixin for the CIFAR classes: files must exist, their md5 is not recomputed.

    The class names in the meta file are not needed (labels are already integers), so a missing
    or damaged meta file does not stop training.
    """

    root: str
    base_folder: str
    train_list: list[list[str]]
    test_list: list[list[str]]

    def _check_integrity(self) -> bool:
        return all(os.path.isfile(os.path.join(self.root, self.base_folder, f)) for f, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        self.classes: list[str] = []


class _Cifar10(_FilesOnlyCifar, CIFAR10):
    pass


class _Cifar100(_FilesOnlyCifar, CIFAR100):
    pass


class _Svhn(SVHN):
    """SVHN with the same rule as CIFAR: the file must exist, its md5 is not recomputed."""

    def _check_integrity(self) -> bool:
        return os.path.isfile(os.path.join(self.root, self.filename))


def _read_idx(cls: type[MNIST]) -> Callable[[Path, bool, bool], Arrays]:
    # MNIST's classes only check that the raw files exist, so they are used as they are.
    def read(root: Path, train: bool, download: bool) -> Arrays:
        ds = cls(str(root), train=train, download=download)
        return ds.data.numpy()[:, None], ds.targets.numpy().astype(np.int64)

    return read


def _read_cifar(cls: type[CIFAR10]) -> Callable[[Path, bool, bool], Arrays]:
    def read(root: Path, train: bool, download: bool) -> Arrays:
        ds = cls(str(root), train=train, download=download)
        return ds.data.transpose(0, 3, 1, 2), np.asarray(ds.targets, dtype=np.int64)  # HWC -> CHW

    return read


def _read_svhn(root: Path, train: bool, download: bool) -> Arrays:
    ds = _Svhn(str(root), split="train" if train else "test", download=download)  # already CHW, 10 -> 0
    return ds.data, np.asarray(ds.labels, dtype=np.int64)


def _idx_files(cls: type[MNIST]) -> Callable[[Path, bool], list[Path]]:
    def files(root: Path, train: bool) -> list[Path]:
        folder = root / cls.__name__
        if all((folder / "processed" / f).is_file() for f in (cls.training_file, cls.test_file)):
            return []  # the pre-0.9 torchvision cache, which torchvision still reads
        prefix = "train-" if train else "t10k-"
        return [folder / "raw" / Path(url).stem for url, _ in cls.resources if url.startswith(prefix)]

    return files


def _cifar_files(cls: type[CIFAR10]) -> Callable[[Path, bool], list[Path]]:
    return lambda root, train: [root / cls.base_folder / f for f, _ in (cls.train_list if train else cls.test_list)]


def _svhn_files(root: Path, train: bool) -> list[Path]:
    return [root / SVHN.split_list["train" if train else "test"][1]]


@dataclass(frozen=True)
class _Source:
    """One dataset: how to find and read its files, and the constants that normalise it (its
    shape and class count are in the registry).

    The mean and std are the usual published per-channel statistics of each training set (pixels
    in [0, 1]). Fixed constants rather than statistics of the loaded split keep the inputs the
    same whatever ``val_fraction``, ``train_fraction`` or ``split_seed`` is.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    title: str
    what: str
    files: Callable[[Path, bool], list[Path]]
    read: Callable[[Path, bool, bool], Arrays]


_SOURCES: dict[str, _Source] = {
    "mnist": _Source(
        (0.1307,), (0.3081,), "MNIST idx-ubyte",
        "the four uncompressed MNIST idx-ubyte files (MNIST/raw/train-images-idx3-ubyte, ...)",
        _idx_files(MNIST), _read_idx(MNIST),
    ),
    "fashion_mnist": _Source(
        (0.2860,), (0.3530,), "Fashion-MNIST idx-ubyte",
        "the four uncompressed Fashion-MNIST idx-ubyte files (FashionMNIST/raw/train-images-idx3-ubyte, ...)",
        _idx_files(FashionMNIST), _read_idx(FashionMNIST),
    ),
    "cifar10": _Source(
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "CIFAR-10 python version",
        "the CIFAR-10 python version (the cifar-10-batches-py folder)",
        _cifar_files(CIFAR10), _read_cifar(_Cifar10),
    ),
    "cifar100": _Source(
        (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "CIFAR-100 python version",
        "the CIFAR-100 python version (the cifar-100-python folder)",
        _cifar_files(CIFAR100), _read_cifar(_Cifar100),
    ),
    "svhn": _Source(
        (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), "SVHN cropped-digits .mat",
        "SVHN's train_32x32.mat and test_32x32.mat (format 2, cropped digits)",
        _svhn_files, _read_svhn,
    ),
}

NORMALISATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    name: (s.mean, s.std) for name, s in _SOURCES.items()
}
"""Per-channel (mean, std) of pixels in [0, 1], by dataset name."""


def _brief(e: BaseException) -> str:
    """An exception as a short phrase: parsers' messages can be long or span lines."""
    text = " ".join(str(e).split())
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _consistent(x: np.ndarray, y: np.ndarray, channels: int, num_classes: int) -> Arrays:
    """Reject files that parsed but hold no usable data (e.g. a cut idx file with a valid header)."""
    if x.ndim != 4 or x.shape[1] != channels or x.dtype != np.uint8:
        raise ValueError(f"images shaped {x.shape} of {x.dtype}, expected (N, {channels}, H, W) uint8")
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"labels span {y.min()}..{y.max()}, expected 0..{num_classes - 1}")
    return x, y


def _normalise(data: Dataset, mean: tuple[float, ...], std: tuple[float, ...]) -> Dataset:
    """(x / 255 - mean) / std as one multiply-add, in place: a float copy of CIFAR is 600 MB,
    so the images go through ``split`` as uint8 and are rescaled in the tensors it made."""
    scale = torch.tensor([1.0 / (255.0 * s) for s in std]).view(1, -1, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)]).view(1, -1, 1, 1)
    for x in (data.x_train, data.x_val, data.x_test):
        x.mul_(scale).add_(shift)
    return data


def _where(files: list[Path], root: Path, part: str) -> str:
    if len(files) == 1:
        return str(files[0])
    return f"the {part} files in {files[0].parent if files else root}"


def load(cfg: DataConfig) -> Dataset:
    """Load a torchvision dataset from ``cfg.root`` (downloading only if ``cfg.download`` and
    files are missing) and split it like every other dataset.

    :raises DatasetError: one line naming the dataset, the path and the fix, for a missing root,
        a missing file, a failed download or a file that does not parse.
    """
    name = cfg.name
    if name not in _SOURCES:
        raise DatasetError(f"{name}: not a torchvision dataset nas-gym knows; choose one of {', '.join(_SOURCES)}")
    src, classes = _SOURCES[name], DATASETS[name].classes
    root = Path(cfg.root).expanduser() if cfg.root else default_root()
    put = f"put {src.what} under {root}"

    def first_missing() -> Path | None:
        return next((p for p in src.files(root, True) + src.files(root, False) if not p.is_file()), None)

    missing = first_missing()
    if missing is not None and not cfg.download:
        if not root.is_dir():
            raise DatasetError(f"{name}: data root {root} does not exist (data.root); {put}, or set data.download: true when online")
        raise DatasetError(f"{name}: {missing} not found; {put}, or set data.download: true when online")

    download = missing is not None  # never re-download (or re-hash) files that are already there
    arrays: list[np.ndarray] = []
    for train, part in ((True, "training"), (False, "test")):
        try:
            arrays += _consistent(*src.read(root, train, download), len(src.mean), classes)
        except Exception as e:  # parsers of damaged files raise nearly anything: report them all in one line
            if download and first_missing() is not None:
                raise DatasetError(f"{name}: download into {root} failed ({_brief(e)}); check the connection, or {put}") from None
            raise DatasetError(
                f"{name}: cannot read {_where(src.files(root, train), root, part)} ({_brief(e)}); "
                f"replace with intact {src.title} files (delete, then download again)"
            ) from None
    x, y, x_test, y_test = arrays
    if x.shape[2:] != x_test.shape[2:]:
        raise DatasetError(f"{name}: training images are {x.shape[2:]} but test images {x_test.shape[2:]} under {root}; delete the files and download again")
    return _normalise(split(name, x, y, x_test, y_test, cfg, classes), src.mean, src.std)
