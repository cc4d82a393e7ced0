"""``data.name: arrays``: a user's data as one ``.npz`` file.

``x_train`` and ``y_train`` are required; ``x_val``/``y_val`` and ``x_test``/``y_test`` are used
when present (each pair complete), otherwise validation (``val_fraction``, by ``split_seed``)
and test (``test_fraction``, fixed) are held out of the training arrays. ``(N, L)`` and
``(N, C, L)`` arrays are 1-D signals, ``(N, H, W)`` and ``(N, C, H, W)`` images (``data.layout``
settles a 3-D array); labels are integers ``0 .. K-1``. Features are standardised per channel
with statistics of the training split only.

The whole file is read and checked when the config is validated (and again when loaded), so
each process reads it twice at most: a cost in seconds only for files of gigabytes, and the
price of stopping bad data before a run folder exists.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nas_gym.data import checks
from nas_gym.data.base import DatasetError, DatasetInfo
from nas_gym.data.settings import DataConfig
from nas_gym.data.splits import holdout_test
from nas_gym.storage.npz import NpzError, load_arrays

if TYPE_CHECKING:
    from nas_gym.data.dataset import Dataset

PAIRS = (("x_train", "y_train"), ("x_val", "y_val"), ("x_test", "y_test"))
KEYS = tuple(k for pair in PAIRS for k in pair)
_NDIM = {"NL": 2, "NCL": 3, "NHW": 3, "NCHW": 4}


@dataclass(frozen=True)
class _Checked:
    """A file that passed every check: its arrays in ``(N, C, ...)`` form, and what they hold."""

    arrays: dict[str, np.ndarray]
    classes: int
    digest: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.arrays["x_train"].shape[1:])


_MEMO: dict[tuple | None, tuple[tuple[int, ...], int, int, bool, bool, str]] = {}
"""(path, size, mtime, layout) -> (shape, classes, training samples, has val, has test, digest):
what ``describe`` found, so revalidating a config does not read the file again."""


def _where(cfg: DataConfig) -> str:
    return f"arrays: {Path(cfg.path).expanduser()}"


def _read(path: Path, where: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{where} does not exist (data.path); point data.path at your .npz file")
    save = "save it with numpy.savez(path, x_train=x, y_train=y)"
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DatasetError(f"{where} is not a readable .npz file ({type(e).__name__}); {save}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DatasetError(f"{where} holds a single array, not named arrays; {save}")
    with z:
        unknown = sorted(set(z.files) - set(KEYS))
        if unknown:
            raise DatasetError(f"{where} has an array named {unknown[0]!r}; the names read are {', '.join(KEYS)}")
        names = z.files
    try:  # headers checked before any allocation: a crafted shape cannot exhaust memory
        return load_arrays(path, names, max_bytes=None)
    except NpzError as e:  # object arrays need pickle, which is never enabled for a user's file
        raise DatasetError(f"{where} is damaged or holds Python objects ({e}); store numeric arrays only; {save}") from None


def _layout(where: str, x: np.ndarray, layout: str | None) -> str:
    if layout is None:
        if x.ndim == 3:
            return "NHW" if x.shape[1] == x.shape[2] else "NCL"
        layout = {2: "NL", 4: "NCHW"}.get(x.ndim)
        if layout is None:
            raise DatasetError(f"{where}: x_train has shape {x.shape}; expected (N, L) or (N, C, L) signals, "
                               "(N, H, W) or (N, C, H, W) images")
    elif x.ndim != _NDIM[layout]:
        raise DatasetError(f"{where}: x_train has shape {x.shape}, which is not {layout} (data.layout); "
                           "fix data.layout or the array")
    return layout


def _samples(x: np.ndarray, layout: str) -> np.ndarray:
    """``(N, C, L)`` or ``(N, C, H, W)``: a channel axis where the layout has none."""
    return x[:, None] if layout in ("NL", "NHW") else x


def _check(cfg: DataConfig) -> _Checked:
    """Read the file and run every check, in the order a user would fix things."""
    path, where = Path(cfg.path).expanduser(), _where(cfg)
    raw = _read(path, where)
    for x_name, y_name in PAIRS:
        if (x_name in raw) != (y_name in raw):
            have, missing = (x_name, y_name) if x_name in raw else (y_name, x_name)
            raise DatasetError(f"{where} has {have} but no {missing}; save both or neither")
    if "x_train" not in raw:
        raise DatasetError(f"{where} has no x_train and y_train; save the training set under those names")
    layout = _layout(where, raw["x_train"], cfg.layout)
    arrays: dict[str, np.ndarray] = {}
    classes: int | None = None  # set by the training labels, which come first
    for x_name, y_name in PAIRS:
        if x_name not in raw:
            continue
        x, y = raw[x_name], raw[y_name]
        checks.pair(where, x_name, x, y_name, y)
        if x.shape[1:] != raw["x_train"].shape[1:]:
            raise DatasetError(f"{where}: {x_name} samples are {x.shape[1:]} but x_train's are {raw['x_train'].shape[1:]}; "
                               "give every split the same sample shape")
        checks.finite(where, x_name, x)
        arrays[y_name] = checks.labels(where, y_name, y, classes)
        arrays[x_name] = _samples(x, layout)
        if classes is None:
            classes = int(arrays[y_name].max()) + 1
    shape = arrays["x_train"].shape[1:]
    if 0 in shape:
        raise DatasetError(f"{where}: x_train samples are empty (shape {raw['x_train'].shape}); store at least one value per sample")
    if len(shape) == 3 and shape[1] != shape[2]:
        raise DatasetError(f"{where}: x_train holds {shape[1]}x{shape[2]} images; the search spaces pool both sides "
                           "alike, so images must be square: crop or pad them to one side")
    for held in ("x_val", "x_test"):
        if held in arrays:
            same = checks.overlap(arrays["x_train"], arrays[held])
            if same:
                raise DatasetError(f"{where}: {len(same)} samples of {held} are identical to samples of x_train (first: "
                                   f"{held}[{same[0][1]}] = x_train[{same[0][0]}]); remove them from one of the two")
    return _Checked(arrays, int(arrays["y_train"].max()) + 1, _file_digest(path))


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:20]


def describe(cfg: DataConfig) -> DatasetInfo:
    """Shape and classes of ``cfg.path``, after checking the whole file (memoised per file state)."""
    path = Path(cfg.path).expanduser()
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, cfg.layout)
    except OSError:
        key = None  # no such file: _check says so
    if key is None or key not in _MEMO:
        c = _check(cfg)
        _MEMO[key] = (c.shape, c.classes, len(c.arrays["y_train"]), "y_val" in c.arrays, "y_test" in c.arrays, c.digest)
    shape, classes, n, has_val, has_test, digest = _MEMO[key]
    size = checks.leftover(_where(cfg), n, has_val=has_val, has_test=has_test, val_fraction=cfg.val_fraction,
                           test_fraction=cfg.test_fraction, train_fraction=cfg.train_fraction)
    return DatasetInfo(shape, classes, size, digest)


def load(cfg: DataConfig) -> Dataset:
    """The file's splits as a standardised ``Dataset`` (torch is imported here, not by ``describe``)."""
    from nas_gym.data.dataset import split, standardise

    describe(cfg)  # the size checks, which need the config's fractions
    c = _check(cfg)
    a = c.arrays
    x, y = a["x_train"], a["y_train"]
    if "x_test" in a:
        x_test, y_test = a["x_test"], a["y_test"]
    else:
        test, rest = holdout_test(len(y), cfg.test_fraction)
        x, y, x_test, y_test = x[rest], y[rest], x[test], y[test]
    val = (a["x_val"], a["y_val"]) if "x_val" in a else None
    return standardise(split("arrays", x, y, x_test, y_test, cfg, c.classes, val))
