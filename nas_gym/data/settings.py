"""``DataConfig``, the ``data:`` section of a preset, validated against the dataset registry.

For the data a user brings, validation reads and checks the data itself (``describe``): an
empty class folder or a NaN in an array file then fails while the config is loaded, with one
line, before a run folder, a cache row or a training step exists.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nas_gym.data.base import DatasetInfo
from nas_gym.data.registry import DATASETS, OPTIONAL_FIELDS, dataset_spec, entry_point

_WHAT = {
    "root": "the folder holding one sub-folder of images per class",
    "path": "a .npz file with x_train and y_train (optionally x_val, y_val, x_test, y_test)",
}


_GENERATOR_FIELDS = ("samples", "noise", "generation_seed")


class DataConfig(BaseModel):
    """The dataset and its fixed train / validation / test split.

    :param name: an entry of ``nas_gym.data.registry.DATASETS``, or a dataset an installed package
        declares (``nas_gym.data.registry.dataset_spec``).
    :param root: the built-in sets: the folder holding torchvision datasets, and where MNIST-1D
        is cached once generated (None: ``~/.cache/nas-gym/data``); ``folder``: the image folder,
        one sub-folder per class, optional ``train/``, ``val/`` and ``test/`` splits.
    :param path: ``arrays``: the ``.npz`` file.
    :param val_fraction: share of the training set held out for validation (rewards), unless
        the data brings its own validation split.
    :param test_fraction: ``folder`` and ``arrays`` without a test split of their own: the share
        held out for testing, drawn with a fixed seed so that the test set never moves.
    :param train_fraction: share of the remaining training set used to train (a fidelity knob).
    :param split_seed: seed of the train / validation split, fixed so every run sees the same split.
    :param image_size: ``folder``: side of the square every image is resized to; None: the shorter
        side of the size most images share.
    :param samples: ``mnist1d``: signals to generate, 80% for training and validation and 20%
        for testing as the paper splits them; None: the paper's 5,000.
    :param noise: ``mnist1d``: factor on the generator's correlated and i.i.d. noise scales (a
        harder task at more than 1); None: the paper's noise.
    :param generation_seed: ``mnist1d``: the generator's seed; None: the paper's 42. A dataset
        other than the paper's is another dataset: give its preset a name of its own.
    :param layout: ``arrays``: the axes of ``x``: ``NL`` or ``NCL`` (signals), ``NHW`` or ``NCHW``
        (images); None reads 2-D arrays as NL, 4-D as NCHW and 3-D as NHW when the last two sides
        are equal, else NCL.
    """

    # Same policy as every section of nas_gym.config: frozen, unknown keys and NaN rejected.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = "mnist1d"
    root: str | None = None
    path: str | None = None
    download: bool = False
    val_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    train_fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    split_seed: int = Field(default=0, ge=0)
    image_size: int | None = Field(default=None, ge=1, le=1024)
    layout: Literal["NL", "NCL", "NHW", "NCHW"] | None = None
    samples: int | None = Field(default=None, ge=100, le=1_000_000)
    noise: float | None = Field(default=None, ge=0.0, le=100.0)
    generation_seed: int | None = Field(default=None, ge=0, lt=2**32)

    @model_validator(mode="before")
    @classmethod
    def _absolute_location(cls, raw: Any) -> Any:
        # A run folder's config.yaml must find the same data from any working directory
        # (``retrain``, ``--resume``); ``~`` is expanded here once for every reader.
        name = raw.get("name") if isinstance(raw, dict) else None
        spec = DATASETS.get(name) if isinstance(name, str) else None  # a bad name fails in the field's own check
        if spec is None and isinstance(name, str):
            with contextlib.suppress(ValueError):
                spec = dataset_spec(name)
        if spec is not None and spec.needs and isinstance(raw.get(spec.needs), str):
            raw = {**raw, spec.needs: str(Path(raw[spec.needs]).expanduser().absolute())}
        return raw

    @field_validator("name")
    @classmethod
    def _known_name(cls, name: str) -> str:
        dataset_spec(name)  # raises, naming the choices
        return name

    @model_validator(mode="after")
    def _fields_match_name(self) -> DataConfig:
        spec = dataset_spec(self.name)
        if spec.needs and getattr(self, spec.needs) is None:
            raise ValueError(f"{spec.needs} is required for name {self.name!r}; set data.{spec.needs} to {_WHAT[spec.needs]}")
        if self.path is not None and spec.needs != "path":
            raise ValueError(f"path is read only by name 'arrays', not {self.name!r}; remove data.path")
        for field in OPTIONAL_FIELDS:
            if field not in spec.fields and getattr(self, field) != type(self).model_fields[field].default:
                users = ", ".join(n for n, s in DATASETS.items() if field in s.fields)
                raise ValueError(f"{field} is read only by name {users}, not {self.name!r}; remove data.{field}")
        if spec.user_data:
            if self.download:
                raise ValueError(f"download: there is nothing to download for {self.name!r} (your own data); set data.download: false")
            self.info()  # reads and checks the data now (memoised): bad data stops here
        return self

    def info(self) -> DatasetInfo:
        """Shape and class count: a constant for the built-in sets; read (and checked) from the
        data for a user's own, at the cost of listing a folder or reading an array file's labels."""
        spec = dataset_spec(self.name)
        if spec.describe is None:
            return DatasetInfo(spec.shape, spec.classes)  # type: ignore[arg-type]  # both set when describe is None
        return entry_point(spec.describe)(self)

    def identity(self) -> dict[str, Any]:
        """What decides the data a model sees, for cache keys: not where it lives (``root``,
        ``path``, ``download``), nor fields this dataset does not read; for a user's data, a
        digest of its content instead of its location, so moving the data keeps its results."""
        spec = dataset_spec(self.name)
        unused = {f for f in OPTIONAL_FIELDS if f not in spec.fields}
        # The generator's fields joined the key after tables were built on the paper's data: at
        # their default (None) they stay out of it, so those tables and caches keep their keys.
        unset = {f for f in _GENERATOR_FIELDS if getattr(self, f) is None}
        out = self.model_dump(exclude={"root", "path", "download", *unused, *unset})
        if spec.user_data:
            out["content"] = self.info().digest
        return out
