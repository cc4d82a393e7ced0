"""Checks on a user's samples and labels, shared by image folders and array files.

Each check raises :class:`DatasetError` with one line: ``where`` (the dataset and its file), what
is wrong, and how to fix it. They run while the config is validated, so bad data stops a search
before anything is trained or written. Pure numpy, so they can be tested over generated arrays.
"""

from __future__ import annotations

import hashlib

import numpy as np

from nas_gym.data.base import DatasetError
from nas_gym.data.splits import train_size

_F32_MAX = float(np.finfo(np.float32).max)


def pair(where: str, x_name: str, x: np.ndarray, y_name: str, y: np.ndarray) -> None:
    """One label per sample, and at least one sample."""
    if len(x) == 0:
        raise DatasetError(f"{where}: {x_name} is empty; give it at least one sample, or leave the split out")
    if len(x) != len(y):
        raise DatasetError(f"{where}: {x_name} has {len(x)} samples but {y_name} has {len(y)} labels; "
                           "give exactly one label per sample")


def labels(where: str, name: str, y: np.ndarray, classes: int | None = None) -> np.ndarray:
    """``y`` as int64 after checking it holds class labels.

    :param classes: None for the training labels, which define the classes: they must be
        exactly ``0 .. K-1``, every one present, K >= 2. Otherwise the labels of another split,
        which must lie in ``0 .. classes-1``.
    """
    if y.ndim != 1:
        raise DatasetError(f"{where}: {name} has shape {y.shape}; store the labels as a 1-D array of N integers")
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if len(bad):
            raise DatasetError(f"{where}: {name}[{bad[0]}] is {y[bad[0]]}, not a whole number; store integer class labels 0..K-1")
    elif y.dtype.kind not in "iub":
        raise DatasetError(f"{where}: {name} holds {y.dtype} values; store integer class labels 0..K-1")
    y = y.astype(np.int64)
    low, high = int(y.min()), int(y.max())
    if classes is None:
        present = np.unique(y)
        if low < 0 or len(present) != high + 1:
            gap = "negative" if low < 0 else f"class {int(np.setdiff1d(np.arange(high + 1), present)[0])} never appears"
            raise DatasetError(f"{where}: {name} labels span {low}..{high} ({gap}); relabel the classes 0..K-1, each with samples")
        if high == 0:
            raise DatasetError(f"{where}: {name} has a single class (0); a classifier needs samples of two or more classes")
    elif low < 0 or high >= classes:
        raise DatasetError(f"{where}: {name} labels span {low}..{high} but the training labels are 0..{classes - 1}; "
                           "use the training set's class numbers")
    return y


def finite(where: str, name: str, x: np.ndarray) -> None:
    """Numbers, finite, and within float32 range (training runs in float32)."""
    if x.dtype.kind not in "fiub":
        raise DatasetError(f"{where}: {name} holds {x.dtype} values; store real numbers (float or int)")
    if x.dtype.kind != "f":
        return
    flat = x.reshape(len(x), -1)
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        raise DatasetError(f"{where}: {name} has NaN or infinite values (first in sample {int(np.argmax(bad))}); "
                           "replace them (e.g. numpy.nan_to_num) or drop those samples")
    if x.dtype.itemsize > 4 and flat.size and float(np.abs(flat).max()) > _F32_MAX:
        raise DatasetError(f"{where}: {name} has values beyond float32's range; rescale the features")


def _digests(x: np.ndarray) -> list[bytes]:
    rows = np.ascontiguousarray(x).reshape(len(x), -1)
    return [hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in rows]


def overlap(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """``(i, j)`` for every sample ``b[j]`` identical (same bytes) to some ``a[i]``, in order of ``j``."""
    seen: dict[bytes, int] = {}
    for i, d in enumerate(_digests(a)):
        seen.setdefault(d, i)
    return [(seen[d], j) for j, d in enumerate(_digests(b)) if d in seen]


def leftover(where: str, n: int, *, has_val: bool, has_test: bool, val_fraction: float, test_fraction: float,
             train_fraction: float) -> int:
    """Training samples left once validation and test are held out; none left is an error."""
    size = train_size(n, has_val=has_val, has_test=has_test, val_fraction=val_fraction, test_fraction=test_fraction,
                      train_fraction=train_fraction)
    if size == 0:
        held = " and ".join(s for s, given in (("validation", has_val), ("test", has_test)) if not given)
        raise DatasetError(f"{where}: {n} training samples are too few to hold out {held} samples and still train; "
                           "add samples, or provide the held-out split yourself")
    return size
