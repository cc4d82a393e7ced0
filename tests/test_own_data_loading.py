"""Loading a user's data: image folders (splits, grey/RGB, resizing, the on-disk cache, cache keys)
and array files (layouts, given splits, the fixed test share), plus property tests of the checks
over generated arrays."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from data_files import class_images, signal_arrays, write_arrays, write_image_folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nas_gym.config import load_config
from nas_gym.data import DataConfig, DatasetError, checks, folder, load_dataset

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def data_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NAS_GYM_DATA", str(tmp_path / "data-cache"))
    folder._MEMO.clear()  # each test starts as a fresh process would
    return tmp_path / "data-cache"


def _channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dims = [0, *range(2, x.dim())]
    return x.mean(dim=dims), x.std(dim=dims)


# ---------------------------------------------------------------- image folders


def test_folder_splits_shapes_and_train_only_statistics(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "im", classes=3, per_class=20, side=10)
    d = load_dataset(DataConfig(name="folder", root=str(root)))
    assert d.input_shape == (3, 10, 10) and d.num_classes == 3 and d.name == "folder"
    assert len(d.y_test) == 12 and len(d.y_val) == 10 and len(d.y_train) == 38  # 20% of 60, then 20% of 48
    assert sorted(torch.cat([d.y_train, d.y_val, d.y_test]).tolist()) == [k for k in range(3) for _ in range(20)]
    mean, std = _channel_stats(d.x_train)
    torch.testing.assert_close(mean, torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(std, torch.ones(3), atol=1e-4, rtol=0)
    assert not torch.allclose(_channel_stats(d.x_val)[0], torch.zeros(3), atol=1e-5)  # not refitted on validation


def test_folder_val_and_test_subfolders_are_used(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "im" / "train", classes=2, per_class=15, side=8)
    write_image_folder(tmp_path / "im" / "val", classes=2, per_class=3, side=8, seed=1)
    write_image_folder(tmp_path / "im" / "test", classes=2, per_class=4, side=8, seed=2)
    d = load_dataset(DataConfig(name="folder", root=str(root.parent)))
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (30, 6, 8)
    assert d.y_val.tolist() == [0, 0, 0, 1, 1, 1] and d.y_test.tolist() == [0] * 4 + [1] * 4  # class folders in order


def test_folder_grey_images_and_default_size(tmp_path: Path) -> None:
    """Grey everywhere: one channel. Size: the shorter side of the most common image size."""
    root = write_image_folder(tmp_path / "im", classes=2, per_class=5, side=8, grey=True)
    rng = np.random.default_rng(0)
    for i, img in enumerate(class_images(12, 1, 12, 1, rng)):
        Image.fromarray(img[:, :9, 0]).save(root / "c1" / f"wide{i}.png")  # 12 rows x 9 columns, the commonest size
    info = DataConfig(name="folder", root=str(root)).info()
    assert info.shape == (1, 9, 9) and info.classes == 2
    assert DataConfig(name="folder", root=str(root), image_size=5).info().shape == (1, 5, 5)
    Image.fromarray(class_images(1, 0, 8, 3, rng)[0]).save(root / "c0" / "colour.png")
    assert DataConfig(name="folder", root=str(root)).info().shape[0] == 3  # one RGB image: all become RGB


def test_folder_second_load_reads_the_cache(tmp_path: Path, data_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_image_folder(tmp_path / "im", classes=2, per_class=10)
    cfg = DataConfig(name="folder", root=str(root))
    first = load_dataset(cfg)
    (cached,) = (data_cache / "folders").iterdir()

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded again instead of reading the cache")

    with monkeypatch.context() as patch:
        patch.setattr(folder, "_decode", no_decoding)
        folder._MEMO.clear()  # as in a new process
        second = load_dataset(DataConfig(name="folder", root=str(root)))
    assert all(torch.equal(getattr(first, f), getattr(second, f)) for f in ("x_train", "y_train", "x_val", "x_test"))
    Image.fromarray(class_images(1, 0, 12, 3, np.random.default_rng(5))[0]).save(root / "c0" / "new.png")
    load_dataset(DataConfig(name="folder", root=str(root)))
    assert len(list((data_cache / "folders").iterdir())) == 2 and cached.exists()  # a new file list, a new cache file


def test_folder_cache_key_follows_content_not_location(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "im", classes=2, per_class=10)
    preset = {"data.root": str(root), "train.batch_size": 4}
    base = load_config("folder-example", preset).context_hash()
    shutil.copytree(root, tmp_path / "moved", copy_function=shutil.copy)  # new modification times, same images
    assert load_config("folder-example", {**preset, "data.root": str(tmp_path / "moved")}).context_hash() == base
    Image.fromarray(class_images(1, 1, 12, 3, np.random.default_rng(9))[0]).save(tmp_path / "moved" / "c1" / "0.png")
    assert load_config("folder-example", {**preset, "data.root": str(tmp_path / "moved")}).context_hash() != base


def test_folder_class_unknown_to_training(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "im", classes=2, per_class=10)
    write_image_folder(root / "val", classes=3, per_class=2)
    with pytest.raises(DatasetError, match=r"^folder: .*val/c2 is a class the training images do not have; rename"):
        DataConfig.model_construct(name="folder", root=str(root)).info()  # unvalidated: the bare DatasetError


# ---------------------------------------------------------------- array files


@pytest.mark.parametrize(
    ("shape", "layout", "sample"),
    [((40, 16), None, (1, 16)), ((40, 2, 16), None, (2, 16)), ((40, 8, 8), None, (1, 8, 8)),
     ((40, 3, 8, 8), None, (3, 8, 8)), ((40, 8, 8), "NCL", (8, 8)), ((40, 16), "NCL", None)],
    ids=["NL", "NCL", "NHW", "NCHW", "square-as-NCL", "layout-mismatch"],
)
def test_array_layouts(tmp_path: Path, shape: tuple[int, ...], layout: str | None, sample: tuple[int, ...] | None) -> None:
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    path = write_arrays(tmp_path / "a.npz", x_train=x, y_train=np.arange(40) % 2)
    cfg = {"name": "arrays", "path": str(path), "layout": layout}
    if sample is None:
        with pytest.raises(ValueError, match=r"arrays: .*a\.npz: x_train has shape \(40, 16\), which is not NCL \(data\.layout\)"):
            DataConfig(**cfg)
        return
    d = load_dataset(DataConfig(**cfg))
    assert d.input_shape == sample == DataConfig(**cfg).info().shape


def test_array_given_splits_are_kept(tmp_path: Path) -> None:
    x, y = signal_arrays(90)
    path = write_arrays(tmp_path / "a.npz", x_train=x[:60], y_train=y[:60], x_val=x[60:70], y_val=y[60:70],
                        x_test=x[70:], y_test=y[70:])
    d = load_dataset(DataConfig(name="arrays", path=str(path)))
    assert (len(d.y_train), d.y_val.tolist(), d.y_test.tolist()) == (60, y[60:70].tolist(), y[70:].tolist())
    mean, std = _channel_stats(d.x_train)
    # standardised with the training split's statistics, applied unchanged to the other two
    raw_val = torch.from_numpy(x[60:70])
    expected = (raw_val - torch.from_numpy(x[:60]).mean()) / torch.from_numpy(x[:60]).std()
    torch.testing.assert_close(d.x_val, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mean, torch.zeros(1), atol=1e-5, rtol=0)


def test_split_seed_moves_validation_not_test(tmp_path: Path) -> None:
    path = str(write_arrays(tmp_path / "a.npz", n=100))
    a, b = (load_dataset(DataConfig(name="arrays", path=path, split_seed=s)) for s in (0, 1))
    assert torch.equal(a.y_test, b.y_test) and not torch.equal(a.y_val, b.y_val)
    assert len(a.y_test) == 20 and len(a.y_val) == 16


# ---------------------------------------------------------------- properties over generated arrays

_names = itertools.count()


def _save(folder_path: Path, **arrays: np.ndarray) -> str:
    path = folder_path / f"gen{next(_names)}.npz"  # a new name each time: a rewritten file could keep its mtime
    np.savez(path, **arrays)
    return str(path)


@st.composite
def datasets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Valid data: N samples of a drawn layout, K classes each present, distinct finite features."""
    k = draw(st.integers(2, 4))
    n = draw(st.integers(3 * k, 40))
    sample = draw(st.sampled_from([(9,), (2, 9), (6, 6), (2, 5, 5)]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *sample)).astype(draw(st.sampled_from([np.float32, np.float64])))
    y = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
    return x, rng.permutation(y)


@SETTINGS
@given(data=datasets(), val=st.floats(0.05, 0.5), test=st.floats(0.05, 0.5), frac=st.floats(0.1, 1.0))
def test_valid_arrays_load_with_the_promised_sizes(tmp_path: Path, data: tuple[np.ndarray, np.ndarray], val: float,
                                                   test: float, frac: float) -> None:
    x, y = data
    cfg = DataConfig(name="arrays", path=_save(tmp_path, x_train=x, y_train=y), val_fraction=val, test_fraction=test,
                     train_fraction=frac)
    info, d = cfg.info(), load_dataset(cfg)
    assert info.classes == len(np.unique(y)) == d.num_classes
    assert info.shape == d.input_shape and info.train_size == len(d.y_train) >= 1
    assert len(d.y_val) >= 1 and len(d.y_test) >= 1
    if frac == 1.0:
        assert sorted(torch.cat([d.y_train, d.y_val, d.y_test]).tolist()) == sorted(y.tolist())
    assert torch.isfinite(d.x_train).all() and d.x_train.dtype == torch.float32


DEFECTS = {
    "nan": "has NaN or infinite values",
    "inf": "has NaN or infinite values",
    "gap": "never appears",
    "negative": "(negative)",
    "lengths": "samples but y_train has",
    "overlap": "identical to samples of x_train",
    "test-label": "but the training labels are",
}


@SETTINGS
@given(data=datasets(), defect=st.sampled_from(sorted(DEFECTS)), where=st.integers(0, 10**6))
def test_each_planted_defect_is_named_in_one_line(tmp_path: Path, data: tuple[np.ndarray, np.ndarray], defect: str,
                                                  where: int) -> None:
    x, y = data
    i = where % len(y)
    arrays = {"x_train": x.copy(), "y_train": y.copy()}
    if defect in ("nan", "inf"):
        arrays["x_train"].reshape(len(x), -1)[i, where % x[0].size] = np.nan if defect == "nan" else -np.inf
    elif defect == "gap":
        arrays["y_train"] = np.where(y == y.max(), y.max() + 1, y)
    elif defect == "negative":
        arrays["y_train"] = y - 1
    elif defect == "lengths":
        arrays["y_train"] = np.delete(y, i)
    elif defect == "overlap":
        arrays |= {"x_test": x[[i]], "y_test": y[[i]]}
    else:
        arrays |= {"x_test": x[:2] + 100, "y_test": np.array([0, y.max() + 1])}
    path = _save(tmp_path, **arrays)
    with pytest.raises(DatasetError) as e:
        DataConfig.model_construct(name="arrays", path=path).info()  # unvalidated: the bare DatasetError
    message = str(e.value)
    assert message.startswith(f"arrays: {path}") and DEFECTS[defect] in message and "\n" not in message
    assert "; " in message  # the fix follows the problem


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.integers(0, 5), min_size=1, max_size=12), other=st.lists(st.integers(0, 5), min_size=1, max_size=12))
def test_overlap_finds_exactly_the_identical_samples(rows: list[int], other: list[int]) -> None:
    a = np.array([[r, r % 2] for r in rows], dtype=np.float32)
    b = np.array([[r, r % 2] for r in other], dtype=np.float32)
    found = checks.overlap(a, b)
    assert [j for _, j in found] == [j for j, r in enumerate(other) if r in rows]
    assert all(np.array_equal(a[i], b[j]) for i, j in found)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-2, 6), min_size=1, max_size=20))
def test_labels_accepted_exactly_when_they_are_0_to_k_minus_1(y: list[int]) -> None:
    ok = set(y) == set(range(max(y) + 1)) and max(y) >= 1
    try:
        out = checks.labels("arrays: f.npz", "y_train", np.array(y))
    except DatasetError as e:
        assert not ok and str(e).startswith("arrays: f.npz: y_train")
    else:
        assert ok and out.dtype == np.int64 and out.tolist() == y


def test_relative_locations_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run folder's config.yaml then finds the data from any working directory (retrain, --resume)."""
    write_arrays(tmp_path / "a.npz")
    write_image_folder(tmp_path / "im", classes=2, per_class=5)
    monkeypatch.chdir(tmp_path)
    assert DataConfig(name="arrays", path="a.npz").path == str(tmp_path / "a.npz")
    assert DataConfig(name="folder", root="im").root == str(tmp_path / "im")
    assert DataConfig(name="mnist1d", root="cache").root == "cache"  # the built-in sets keep theirs as given
