"""``data.name: folder``: a user's images, one sub-folder per class (torchvision's ImageFolder layout).

``root/<class>/*.png`` is the training pool; ``root/train/<class>/`` may hold it instead, and
``root/val/<class>/`` and ``root/test/<class>/`` are used as the validation and test splits when
present (otherwise held out of the pool as for array files). Images are decoded once, converted to
grey when every image is grey and to RGB otherwise, resized to ``data.image_size`` squares (default:
the shorter side of the size most images share) and cached as one uint8 ``.npz`` under
``NAS_GYM_DATA/folders``, named by a hash of the file list (names, sizes, modification times) and
the size: the second load reads one file. Pixels are standardised per channel with statistics of
the training split only.

Every check runs before the cache is written, and a cache file exists only for data that passed
them: a bad folder stops the config from loading, and a good one is checked once.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nas_gym.data import checks
from nas_gym.data.base import DatasetError, DatasetInfo, default_root
from nas_gym.data.settings import DataConfig
from nas_gym.data.splits import holdout_test
from nas_gym.storage.atomic import atomic_write

if TYPE_CHECKING:
    from nas_gym.data.dataset import Dataset

EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")  # torchvision's ImageFolder list
SPLITS = ("train", "val", "test")
FORMAT = 1  # bump when the cached arrays change meaning, so old cache files are not read
MAX_BYTES = 4 << 30  # float32 tensors of the whole set: beyond this a laptop swaps, so ask for a smaller image_size
_GREY = {"1", "L", "LA", "I", "I;16", "F"}

Listing = dict[str, dict[str, list[os.DirEntry]]]
"""split -> class -> image files, sorted by name (``DirEntry``: a folder of thousands of images is
listed and stat-ed with one system call per file)."""


@dataclass(frozen=True)
class _Summary:
    shape: tuple[int, ...]
    classes: int
    counts: tuple[int, int, int]  # train pool, val, test; 0 when the folder has no such split
    digest: str


_MEMO: dict[str, _Summary] = {}


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted((e for e in entries if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in EXTENSIONS
                       and e.is_file()), key=lambda e: e.name)


def _listing(root: Path) -> Listing:
    """The files of each split and class, after the checks a listing alone can make."""
    if not root.is_dir():
        raise DatasetError(f"folder: data.root {root} is not a folder; point data.root at the folder holding one "
                           "sub-folder of images per class")
    pool = root / "train" if (root / "train").is_dir() else root
    splits = {"train": pool, **{s: root / s for s in ("val", "test") if (root / s).is_dir()}}
    out: Listing = {}
    for split, folder in splits.items():
        dirs = [d for d in _visible_dirs(folder) if not (folder == root and d.name in SPLITS)]
        if not dirs:
            raise DatasetError(f"folder: {folder} has no class sub-folders; put each class's images in "
                               f"{folder}{os.sep}<class name>{os.sep}")
        out[split] = {}
        for d in dirs:
            files = _images(d)
            if not files:
                raise DatasetError(f"folder: class folder {d} has no images ({', '.join(EXTENSIONS)}); "
                                   "add images or delete the folder")
            out[split][d.name] = files
    if len(out["train"]) < 2:
        raise DatasetError(f"folder: {pool} has a single class folder ({next(iter(out['train']))}); a classifier needs "
                           "two or more: add a sub-folder of images per class")
    for split in ("val", "test"):
        unknown = sorted(set(out.get(split, {})) - set(out["train"]))
        if unknown:
            raise DatasetError(f"folder: {root / split / unknown[0]} is a class the training images do not have; "
                               f"rename it to one of {', '.join(out['train'])} or add it to the training folders")
    return out


def _key(listing: Listing, image_size: int | None) -> str:
    h = hashlib.sha256(f"{FORMAT}:{image_size}".encode())
    for split, classes in listing.items():
        for name, files in classes.items():
            for f in files:
                st = f.stat()
                h.update(f"{split}/{name}/{f.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _cache_file(key: str) -> Path:
    return default_root() / "folders" / f"{key}.npz"


def _open(path: str):  # PIL raises many types for damaged files; each becomes one line naming the file
    from PIL import Image

    try:
        return Image.open(path)
    except Exception as e:
        raise DatasetError(f"folder: cannot read image {path} ({type(e).__name__}); delete or replace the file") from None


def _geometry(listing: Listing, image_size: int | None) -> tuple[int, int]:
    """(channels, side) from the images' headers (no pixel is decoded)."""
    sizes: Counter[tuple[int, int]] = Counter()
    grey = True
    for classes in listing.values():
        for files in classes.values():
            for f in files:
                with _open(f.path) as img:
                    sizes[img.size] += 1
                    grey = grey and img.mode in _GREY
    side = image_size or min(sizes.most_common(1)[0][0])
    return (1 if grey else 3), side


def _decode(files: list[str], channels: int, side: int) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(files), channels, side, side), dtype=np.uint8)
    for i, f in enumerate(files):
        with _open(f) as img:
            try:
                img = img.convert("L" if channels == 1 else "RGB").resize((side, side), Image.Resampling.BILINEAR)
                pixels = np.asarray(img)
            except Exception as e:  # truncated or corrupt pixel data shows up only now
                raise DatasetError(f"folder: cannot read image {f} ({type(e).__name__}); delete or replace the file") from None
        out[i] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return out


def _build(listing: Listing, cfg: DataConfig, path: Path) -> tuple[_Summary, dict[str, np.ndarray]]:
    """Decode and check, then write the cache file atomically (concurrent loaders never see half a file)."""
    channels, side = _geometry(listing, cfg.image_size)
    total = sum(len(f) for c in listing.values() for f in c.values())
    if total * channels * side * side * 4 > MAX_BYTES:
        raise DatasetError(f"folder: {total} images of {channels}x{side}x{side} take "
                           f"{total * channels * side * side * 4 / 2**30:.1f} GB as float32 tensors; "
                           "set data.image_size to a smaller side (e.g. 32 or 64)")
    classes = {name: k for k, name in enumerate(listing["train"])}
    arrays: dict[str, np.ndarray] = {}
    files: dict[str, list[str]] = {}
    for split, by_class in listing.items():
        files[split] = [f.path for name in by_class for f in by_class[name]]
        arrays[f"x_{split}"] = _decode(files[split], channels, side)
        arrays[f"y_{split}"] = np.array([classes[name] for name in by_class for _ in by_class[name]], dtype=np.int64)
    for split in ("val", "test"):
        if split in files:
            same = checks.overlap(arrays["x_train"], arrays[f"x_{split}"])
            if same:
                i, j = same[0]
                raise DatasetError(f"folder: {len(same)} {split} image(s) identical to training images (first: "
                                   f"{files[split][j]} and {files['train'][i]}); remove them from one of the two")
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode() + arrays[name].tobytes())
    counts = tuple(len(files.get(s, ())) for s in SPLITS)
    summary = _Summary((channels, side, side), len(classes), counts, digest.hexdigest()[:20])  # type: ignore[arg-type]
    try:
        atomic_write(path, lambda f: np.savez(f, **arrays, meta=np.array([channels, side, len(classes), *counts]),
                                              digest=np.array(summary.digest)))
    except OSError:
        pass  # an unwritable cache folder only costs decoding again next time
    return summary, arrays


def _prepare(cfg: DataConfig, with_arrays: bool) -> tuple[_Summary, dict[str, np.ndarray]]:
    """The folder's summary, and its arrays if asked: from memory, the cache file, or by decoding."""
    listing = _listing(Path(cfg.root).expanduser())  # type: ignore[arg-type]  # required for this name
    key = _key(listing, cfg.image_size)
    if key in _MEMO and not with_arrays:
        return _MEMO[key], {}
    path = _cache_file(key)
    try:
        with np.load(path) as z:
            c, side, k, *counts = (int(v) for v in z["meta"])
            summary = _Summary((c, side, side), k, tuple(counts), str(z["digest"]))  # type: ignore[arg-type]
            arrays = {n: z[n] for n in z.files if n not in ("meta", "digest")} if with_arrays else {}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error, MemoryError):
        summary, arrays = _build(listing, cfg, path)  # no cache yet, or a damaged one: decode again
    _MEMO[key] = summary
    return summary, arrays


def _info(cfg: DataConfig, s: _Summary) -> DatasetInfo:
    _, n_val, n_test = s.counts
    size = checks.leftover(f"folder: {cfg.root}", s.counts[0], has_val=n_val > 0, has_test=n_test > 0,
                           val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction,
                           train_fraction=cfg.train_fraction)
    return DatasetInfo(s.shape, s.classes, size, s.digest)


def describe(cfg: DataConfig) -> DatasetInfo:
    """Shape, classes and training size of ``cfg.root``; decodes and caches the images the first time."""
    return _info(cfg, _prepare(cfg, with_arrays=False)[0])


def load(cfg: DataConfig) -> Dataset:
    """The folder's images as a ``Dataset`` standardised with training statistics (pixels in [0, 1] first)."""
    from nas_gym.data.dataset import split, standardise

    s, a = _prepare(cfg, with_arrays=True)
    _info(cfg, s)  # the size checks, which need the config's fractions
    x, y = a["x_train"], a["y_train"]
    if "x_test" in a:
        x_test, y_test = a["x_test"], a["y_test"]
    else:
        test, rest = holdout_test(len(y), cfg.test_fraction)
        x, y, x_test, y_test = x[rest], y[rest], x[test], y[test]
    val = (a["x_val"], a["y_val"]) if "x_val" in a else None
    return standardise(split("folder", x, y, x_test, y_test, cfg, s.classes, val), scale=1 / 255)
