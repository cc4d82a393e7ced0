"""Datasets: one registry (``registry.DATASETS``: name -> shape, classes, loader), the ``data:``
config section, and the loaders, each a module: ``mnist1d``, ``digits``, ``torchvision_sets``,
``folder`` (a user's images) and ``arrays`` (a user's ``.npz``).

Importing this package imports no torch (a config is validated without it); ``Dataset``,
``load_dataset`` and ``merge_train_val`` load ``nas_gym.data.dataset`` on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas_gym.data.base import DatasetError, DatasetInfo, default_root
from nas_gym.data.registry import DATASET_NAMES, DATASETS, DatasetSpec
from nas_gym.data.settings import DataConfig

if TYPE_CHECKING:
    from nas_gym.data.dataset import Dataset, load_dataset, merge_train_val

_LAZY = ("Dataset", "load_dataset", "merge_train_val")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from nas_gym.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "DataConfig",
    "Dataset",
    "DatasetError",
    "DatasetInfo",
    "DatasetSpec",
    "default_root",
    "load_dataset",
    "merge_train_val",
]
