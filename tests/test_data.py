"""Datasets: shapes, the fixed split, caching, and clean one-line errors.

The torchvision datasets are tested on tiny files written here in their real on-disk formats
(idx-ubyte, CIFAR pickle batches, SVHN .mat), so the loading code runs exactly as it does on the
real files, without a download.
"""

from __future__ import annotations

import pickle
import random
import re
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from nas_gym.config import DataConfig
from nas_gym.data import Dataset, DatasetError, load_dataset

N_TRAIN, N_TEST = 20, 10


# ---------------------------------------------------------------- mnist1d and digits


@pytest.fixture(scope="module")
def mnist1d_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bool]:
    """Generate MNIST-1D once (a few seconds) into a fresh root; also report whether the
    generation left numpy's and Python's global generators as it found them."""
    root = tmp_path_factory.mktemp("mnist1d")
    np.random.seed(123)
    random.seed(123)
    np_before, py_before = np.random.get_state(), random.getstate()
    load_dataset(DataConfig(root=str(root)))
    np_after, py_after = np.random.get_state(), random.getstate()
    unchanged = py_before == py_after and all(
        np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b for a, b in zip(np_before, np_after, strict=True)
    )
    return root, unchanged


def _same(a: Dataset, b: Dataset) -> bool:
    return all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"))


def test_mnist1d_shapes(mnist1d_cache: tuple[Path, bool]) -> None:
    d = load_dataset(DataConfig(root=str(mnist1d_cache[0])))
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (3200, 800, 1000)
    assert d.x_train.shape == (3200, 1, 40) and d.input_shape == (1, 40) and d.spatial_size == 40
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.num_classes == 10 and set(d.y_train.tolist()) == set(range(10))


def test_mnist1d_generation_keeps_global_rng(mnist1d_cache: tuple[Path, bool]) -> None:
    assert mnist1d_cache[1], "generating MNIST-1D changed numpy's or Python's global random state"


def test_mnist1d_split_is_fixed(mnist1d_cache: tuple[Path, bool]) -> None:
    root = str(mnist1d_cache[0])
    a, b = load_dataset(DataConfig(root=root)), load_dataset(DataConfig(root=root))
    assert _same(a, b)
    other = load_dataset(DataConfig(root=root, split_seed=1))
    assert torch.equal(other.x_test, a.x_test)  # the official test set never moves
    assert not torch.equal(other.y_val, a.y_val)


def test_mnist1d_cache_is_reused(mnist1d_cache: tuple[Path, bool], monkeypatch: pytest.MonkeyPatch) -> None:
    import mnist1d.data

    def no_generation(*args: object) -> None:
        raise AssertionError("MNIST-1D was generated again instead of read from the cache")

    monkeypatch.setattr(mnist1d.data, "make_dataset", no_generation)
    assert (mnist1d_cache[0] / "mnist1d_seed42.npz").is_file()
    assert len(load_dataset(DataConfig(root=str(mnist1d_cache[0]))).y_test) == 1000


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_mnist1d_corrupt_cache(mnist1d_cache: tuple[Path, bool], tmp_path: Path, damage: str) -> None:
    good = (mnist1d_cache[0] / "mnist1d_seed42.npz").read_bytes()
    cached = tmp_path / "mnist1d_seed42.npz"
    cached.write_bytes(b"not an npz file" * 10 if damage == "garbage" else good[: len(good) // 3])
    with pytest.raises(DatasetError, match=r"mnist1d: .*mnist1d_seed42\.npz.* corrupt") as e:
        load_dataset(DataConfig(root=str(tmp_path)))
    assert "\n" not in str(e.value)


def test_digits_shapes() -> None:
    d = load_dataset(DataConfig(name="digits"))
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (1150, 288, 359)
    assert d.x_train.shape == (1150, 1, 8, 8) and d.input_shape == (1, 8, 8) and d.spatial_size == 8
    assert d.x_val.dtype == torch.float32 and d.y_val.dtype == torch.int64
    assert float(d.x_train.min()) == -1.0 and float(d.x_train.max()) == 1.0


def test_train_fraction_keeps_validation() -> None:
    full = load_dataset(DataConfig(name="digits"))
    half = load_dataset(DataConfig(name="digits", train_fraction=0.5))
    assert len(half.y_train) == 575
    assert torch.equal(half.x_train, full.x_train[:575])  # a prefix: lower fidelity, same draw
    assert torch.equal(half.x_val, full.x_val) and torch.equal(half.x_test, full.x_test)


# ---------------------------------------------------------------- torchvision formats


def _images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def _labels(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed + 1).integers(0, k, n).astype(np.int64)


def _write_idx(path: Path, a: np.ndarray) -> None:
    # magic: two zero bytes, type 0x08 (uint8), number of dimensions; then big-endian sizes
    path.write_bytes(bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(np.uint8).tobytes())


def _idx_writer(folder: str) -> Callable[[Path], tuple[np.ndarray, ...]]:
    def write(root: Path) -> tuple[np.ndarray, ...]:
        raw = root / folder / "raw"
        raw.mkdir(parents=True)
        x, y = _images(N_TRAIN, (28, 28), 0), _labels(N_TRAIN, 10, 0)
        xt, yt = _images(N_TEST, (28, 28), 2), _labels(N_TEST, 10, 2)
        for prefix, images, labels in (("train", x, y), ("t10k", xt, yt)):
            _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
            _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        return x[:, None], y, xt[:, None], yt

    return write


def _pickle(path: Path, obj: object) -> None:
    with path.open("wb") as f:
        pickle.dump(obj, f)


def _write_cifar10(root: Path) -> tuple[np.ndarray, ...]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    x, y = _images(N_TRAIN, (3, 32, 32), 0), _labels(N_TRAIN, 10, 0)
    xt, yt = _images(N_TEST, (3, 32, 32), 2), _labels(N_TEST, 10, 2)
    for i, part in enumerate(np.array_split(np.arange(N_TRAIN), 5), start=1):  # rows are CHW, flattened
        _pickle(folder / f"data_batch_{i}", {"data": x[part].reshape(len(part), -1), "labels": y[part].tolist()})
    _pickle(folder / "test_batch", {"data": xt.reshape(N_TEST, -1), "labels": yt.tolist()})
    _pickle(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    return x, y, xt, yt


def _write_cifar100(root: Path) -> tuple[np.ndarray, ...]:
    folder = root / "cifar-100-python"
    folder.mkdir()
    x, y = _images(N_TRAIN, (3, 32, 32), 0), _labels(N_TRAIN, 100, 0)
    xt, yt = _images(N_TEST, (3, 32, 32), 2), _labels(N_TEST, 100, 2)
    for name, images, labels in (("train", x, y), ("test", xt, yt)):
        _pickle(folder / name, {"data": images.reshape(len(images), -1), "fine_labels": labels.tolist(), "coarse_labels": (labels // 5).tolist()})
    _pickle(folder / "meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    return x, y, xt, yt


def _write_svhn(root: Path) -> tuple[np.ndarray, ...]:
    from scipy.io import savemat

    x, y = _images(N_TRAIN, (3, 32, 32), 0), _labels(N_TRAIN, 10, 0)
    xt, yt = _images(N_TEST, (3, 32, 32), 2), _labels(N_TEST, 10, 2)
    y[:3] = 0  # make sure some zeros go through SVHN's "10 means 0" labelling
    for name, images, labels in (("train", x, y), ("test", xt, yt)):
        # the .mat files hold X as (H, W, C, N) and y as (N, 1) with the digit 0 labelled 10
        mat_y = np.where(labels == 0, 10, labels).astype(np.uint8)[:, None]
        savemat(root / f"{name}_32x32.mat", {"X": images.transpose(2, 3, 1, 0), "y": mat_y})
    return x, y, xt, yt


WRITERS: dict[str, tuple[Callable[[Path], tuple[np.ndarray, ...]], int, str]] = {
    # name: (writer, number of classes, a file to damage)
    "mnist": (_idx_writer("MNIST"), 10, "MNIST/raw/train-images-idx3-ubyte"),
    "fashion_mnist": (_idx_writer("FashionMNIST"), 10, "FashionMNIST/raw/t10k-labels-idx1-ubyte"),
    "cifar10": (_write_cifar10, 10, "cifar-10-batches-py/data_batch_3"),
    "cifar100": (_write_cifar100, 100, "cifar-100-python/train"),
    "svhn": (_write_svhn, 10, "train_32x32.mat"),
}
VISION = pytest.mark.parametrize("name", list(WRITERS), ids=list(WRITERS))


@VISION
def test_vision_loads_real_formats(name: str, tmp_path: Path) -> None:
    from nas_gym.data.torchvision_sets import NORMALISATION

    write, k, _ = WRITERS[name]
    x, y, xt, yt = write(tmp_path)
    d = load_dataset(DataConfig(name=name, root=str(tmp_path)))
    c, side = x.shape[1], x.shape[2]
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (16, 4, N_TEST)
    assert d.x_train.shape == (16, c, side, side) and d.x_test.shape == (N_TEST, c, side, side)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.num_classes == k and d.name == name
    assert d.y_test.tolist() == yt.tolist()  # the official test set, in order
    assert sorted(d.y_train.tolist() + d.y_val.tolist()) == sorted(y.tolist())
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in NORMALISATION[name])
    expected = (torch.from_numpy(xt).float() / 255 - mean) / std  # also pins the HWC -> CHW order
    torch.testing.assert_close(d.x_test, expected)


@VISION
def test_vision_split_matches_labels(name: str, tmp_path: Path) -> None:
    """Each training image keeps its own label through the split."""
    from nas_gym.data.torchvision_sets import NORMALISATION

    x, y, _, _ = WRITERS[name][0](tmp_path)
    d = load_dataset(DataConfig(name=name, root=str(tmp_path)))
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in NORMALISATION[name])
    raw = torch.round((d.x_train * std + mean) * 255).to(torch.uint8).numpy()
    for image, label in zip(raw, d.y_train.tolist(), strict=True):
        matches = np.flatnonzero((x == image).all(axis=(1, 2, 3)))
        assert len(matches) == 1 and y[matches[0]] == label


@VISION
def test_vision_missing_root(name: str, tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=rf"^{name}: data root .*nowhere does not exist \(data\.root\); put .*data\.download: true") as e:
        load_dataset(DataConfig(name=name, root=str(root)))
    assert str(root) in str(e.value) and "\n" not in str(e.value)


@VISION
def test_vision_missing_file(name: str, tmp_path: Path) -> None:
    write, _, damaged = WRITERS[name]
    write(tmp_path)
    (tmp_path / damaged).unlink()
    with pytest.raises(DatasetError, match=rf"^{name}: .* not found") as e:
        load_dataset(DataConfig(name=name, root=str(tmp_path)))
    assert str(tmp_path / damaged) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
@VISION
def test_vision_corrupt_file(name: str, damage: str, tmp_path: Path) -> None:
    write, _, damaged = WRITERS[name]
    write(tmp_path)
    path = tmp_path / damaged
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2] if damage == "truncated" else b"\x89garbage\n" * 50)
    with pytest.raises(DatasetError, match=rf"^{name}: cannot read .*({re.escape(str(path))}|files in {re.escape(str(path.parent))}) \(.*download again\)$") as e:
        load_dataset(DataConfig(name=name, root=str(tmp_path)))
    assert "\n" not in str(e.value) and "Traceback" not in str(e.value)


def test_vision_labels_out_of_range(tmp_path: Path) -> None:
    _idx_writer("MNIST")(tmp_path)
    _write_idx(tmp_path / "MNIST/raw/t10k-labels-idx1-ubyte", np.full(N_TEST, 12, np.uint8))
    with pytest.raises(DatasetError, match=r"^mnist: cannot read .*labels span 12\.\.12, expected 0\.\.9"):
        load_dataset(DataConfig(name="mnist", root=str(tmp_path)))


@pytest.mark.parametrize(
    ("name", "module", "function"),
    [
        ("mnist", "torchvision.datasets.mnist", "download_and_extract_archive"),
        ("cifar10", "torchvision.datasets.cifar", "download_and_extract_archive"),
        ("svhn", "torchvision.datasets.svhn", "download_url"),
    ],
    ids=["mnist", "cifar10", "svhn"],
)
def test_vision_failed_download(name: str, module: str, function: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, a requested download fails with one line that still says where files can go."""
    from urllib.error import URLError

    def offline(*args: object, **kwargs: object) -> None:
        raise URLError("no network in tests")

    monkeypatch.setattr(f"{module}.{function}", offline)
    with pytest.raises(DatasetError, match=rf"^{name}: download into {tmp_path} failed \(.*no network.*check the connection") as e:
        load_dataset(DataConfig(name=name, root=str(tmp_path), download=True))
    assert "\n" not in str(e.value)
