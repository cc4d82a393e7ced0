"""Small image folders and .npz files written into a test's tmp_path, and the overrides that point
the presets which read a user's data (``folder-example``, ``arrays-example``) at them.

The classes are easy to tell apart (each has its own bright band), so a network trained for one
epoch already beats chance and a search has something to find.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from nas_gym.config import PRESET_DIRS


def class_images(n: int, label: int, side: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uint8 images (N, side, side, C) of class ``label``: noise plus a bright row band."""
    x = rng.integers(0, 90, (n, side, side, channels), dtype=np.uint8)
    band = (label * side) // 4 % side
    x[:, band : band + max(1, side // 8)] = 250
    return x


def write_image_folder(root: Path, classes: int = 3, per_class: int = 20, side: int = 12, *, grey: bool = False,
                       seed: int = 0, ext: str = ".png") -> Path:
    """``root/c0/0.png ...``: ``classes`` folders of ``per_class`` images each."""
    rng = np.random.default_rng(seed)
    for k in range(classes):
        folder = root / f"c{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(class_images(per_class, k, side, 1 if grey else 3, rng)):
            Image.fromarray(img[..., 0] if grey else img).save(folder / f"{i}{ext}")
    return root


def signal_arrays(n: int, classes: int = 3, length: int = 16, channels: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, L) float32 signals whose class is where a bump sits, and int64 labels 0..K-1 (all present)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(0, 0.3, (n, channels, length)).astype(np.float32)
    for i, k in enumerate(y):
        start = (k * length) // classes
        x[i, :, start : start + max(1, length // (2 * classes))] += 2.0
    return x, y.astype(np.int64)


def write_arrays(path: Path, n: int = 60, classes: int = 3, length: int = 16, **extra: np.ndarray) -> Path:
    """``x_train``/``y_train`` of :func:`signal_arrays`, plus any ``extra`` arrays (or overrides of those)."""
    x, y = signal_arrays(n, classes, length)
    np.savez(path, **{"x_train": x, "y_train": y, **extra})
    return path


def preset_data(preset: str, tmp_path: Path) -> dict[str, Any]:
    """Overrides that give a preset reading a user's data some data in ``tmp_path``; {} for the others."""
    path = next(d / f"{preset}.yaml" for d in PRESET_DIRS if (d / f"{preset}.yaml").is_file())
    name = yaml.safe_load(path.read_text())["data"]["name"]
    if name == "folder":
        return {"data.root": str(write_image_folder(tmp_path / "images", per_class=30))}
    if name == "arrays":
        return {"data.path": str(write_arrays(tmp_path / "data.npz", n=150))}
    return {}
