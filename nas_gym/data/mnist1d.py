"""MNIST-1D (Greydanus, "Scaling down deep learning with MNIST-1D"), generated offline.

5,000 signals of length 40 in 10 classes, the paper's seed 42: 4,000 for training, 1,000 for
testing. Generation takes a second or two and is cached as a small ``.npz``.
"""

from __future__ import annotations

import random
import zipfile
import zlib
from pathlib import Path

import numpy as np

from nas_gym.data.base import DatasetError, default_root
from nas_gym.data.dataset import Dataset, split
from nas_gym.data.registry import DATASETS
from nas_gym.data.settings import DataConfig
from nas_gym.storage.atomic import atomic_write


def _arrays(root: Path, samples: int | None = None, noise: float | None = None,
            seed: int | None = None) -> tuple[np.ndarray, ...]:
    """Generate MNIST-1D (by default the paper's: seed 42, 4,000 train / 1,000 test, length 40),
    or read it back.

    ``samples``, ``noise`` (a factor on both noise scales) and ``seed`` change the generator's
    arguments; the paper's defaults keep the paper's file name. ``make_dataset`` seeds numpy's
    and Python's global generators; their states are saved and restored so that loading data
    never changes anyone else's randomness.
    """
    custom = (samples, noise, seed) != (None, None, None)
    name = f"mnist1d_seed{42 if seed is None else seed}"
    if custom:
        name += f"_n{samples or 5000}_noise{1.0 if noise is None else noise:g}"
    path = root / f"{name}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return z["x"], z["y"], z["x_test"], z["y_test"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error, MemoryError) as e:
            raise DatasetError(f"mnist1d: cached file {path} is corrupt ({type(e).__name__}); delete it to regenerate") from None
    from mnist1d.data import get_dataset_args, make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        args = get_dataset_args()
        if samples is not None:
            args.num_samples = samples
        if noise is not None:
            args.corr_noise_scale *= noise
            args.iid_noise_scale *= noise
        if seed is not None:
            args.seed = seed
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (d["x"].astype(np.float32), d["y"].astype(np.int64), d["x_test"].astype(np.float32), d["y_test"].astype(np.int64))
    try:
        # atomic: concurrent workers never read a half-written file
        atomic_write(path, lambda f: np.savez(f, x=arrays[0], y=arrays[1], x_test=arrays[2], y_test=arrays[3]))
    except OSError:
        pass  # a read-only cache folder only costs a regeneration next time
    return arrays


def load(cfg: DataConfig) -> Dataset:
    root = Path(cfg.root) if cfg.root else default_root()
    x, y, x_test, y_test = _arrays(root, cfg.samples, cfg.noise, cfg.generation_seed)
    return split("mnist1d", x[:, None, :], y, x_test[:, None, :], y_test, cfg, DATASETS["mnist1d"].classes)
