"""The registry of datasets: one entry per ``data.name``, the single place that says what each
dataset is.

Entries name their loaders by import path, as Gymnasium registers envs, so asking for a shape
or a class count imports neither torch nor torchvision. A built-in set's shape and class count
are constants; for the data a user brings (an image folder, an array file) only the data can
tell, so those entries name a ``describe`` function that reads just enough of it (and checks
it: bad data fails while the config is validated, before anything is trained or written).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nas_gym import plugins
from nas_gym.data.base import DatasetError


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset.

    :param loader: ``module:function`` taking a ``DataConfig`` and returning a ``Dataset``.
    :param shape: one sample's shape ``(C, L)`` or ``(C, H, W)``; None when only the data knows.
    :param classes: the number of classes; None when only the data knows.
    :param describe: ``module:function`` taking a ``DataConfig`` and returning a ``DatasetInfo``,
        for entries whose shape and classes are None.
    :param needs: the ``data`` field that must be set for this entry (``root`` or ``path``).
    :param fields: the optional ``data`` fields only this entry reads (kept out of other
        entries' cache keys, so adding one never changes an existing key).
    """

    loader: str
    shape: tuple[int, ...] | None = None
    classes: int | None = None
    describe: str | None = None
    needs: str | None = None
    fields: tuple[str, ...] = ()

    @property
    def user_data(self) -> bool:
        return self.describe is not None


_TV = "nas_gym.data.torchvision_sets:load"

DATASETS: dict[str, DatasetSpec] = {
    "mnist1d": DatasetSpec("nas_gym.data.mnist1d:load", (1, 40), 10, fields=("samples", "noise", "generation_seed")),
    "digits": DatasetSpec("nas_gym.data.digits:load", (1, 8, 8), 10),
    "mnist": DatasetSpec(_TV, (1, 28, 28), 10),
    "fashion_mnist": DatasetSpec(_TV, (1, 28, 28), 10),
    "cifar10": DatasetSpec(_TV, (3, 32, 32), 10),
    "cifar100": DatasetSpec(_TV, (3, 32, 32), 100),
    "svhn": DatasetSpec(_TV, (3, 32, 32), 10),
    "folder": DatasetSpec("nas_gym.data.folder:load", describe="nas_gym.data.folder:describe", needs="root",
                          fields=("image_size", "test_fraction")),
    "arrays": DatasetSpec("nas_gym.data.arrays:load", describe="nas_gym.data.arrays:describe", needs="path",
                          fields=("layout", "test_fraction")),
}
DATASET_NAMES = tuple(DATASETS)
OPTIONAL_FIELDS = tuple(sorted({f for spec in DATASETS.values() for f in spec.fields}))
"""``data`` fields that only some entries read."""


def dataset_names() -> tuple[str, ...]:
    """The registry's names, then those installed packages declare as ``nas_gym.datasets`` entry points."""
    return DATASET_NAMES + tuple(n for n in plugins.entry_point_names("dataset") if n not in DATASETS)


def dataset_spec(name: str) -> DatasetSpec:
    """The entry ``data.name`` names: a registry name, the name of a :class:`DatasetSpec` an
    installed package declares in its ``nas_gym.datasets`` entry-point group, or
    ``module.path:Name`` / ``file.py:Name`` of one (``nas_gym.plugins``).

    :raises DatasetError: one line naming ``name`` and what is accepted.
    """
    spec = DATASETS.get(name)
    return spec if spec is not None else _plugin_spec(name)


@functools.cache  # cache keys ask for it at every evaluation; entry points are scanned once
def _plugin_spec(name: str) -> DatasetSpec:
    if ":" not in name and name not in plugins.entry_point_names("dataset"):
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(map(repr, dataset_names()))}, "
                           f"a package's nas_gym.datasets entry point, or {plugins.FORMS} naming a DatasetSpec")
    spec = plugins.load(name, "dataset", error=DatasetError)
    if not isinstance(spec, DatasetSpec):
        raise DatasetError(f"dataset {name!r} names a {type(spec).__name__}, not a nas_gym.data.DatasetSpec; "
                           "point it at DatasetSpec(loader='module:function', shape=..., classes=...)")
    return spec


def entry_point(target: str) -> Callable[..., Any]:
    """The function ``module:function`` names, imported now (by the one plug-in loader)."""
    return plugins.load_target(target, "dataset loader")
