"""What every data module shares, without torch: the error type, the facts a config can ask
about a dataset, and where decoded data is cached."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nas_gym.errors import NasGymError


class DatasetError(NasGymError, ValueError):
    """A dataset that cannot be used; one line naming the dataset, the file and the fix.

    A ``ValueError``, so a check that runs while a config is validated becomes pydantic's
    one-line message for the ``data`` section.
    """


@dataclass(frozen=True)
class DatasetInfo:
    """What a search space, a reward and a cache key need to know about a dataset.

    :param shape: one sample: ``(C, L)`` for signals, ``(C, H, W)`` for images.
    :param classes: number of classes; labels are ``0 .. classes - 1``.
    :param train_size: samples in the training split, where only the data can tell (the sets
        a user brings); None for the built-in sets.
    :param digest: a digest of the content, for the cache key of a user's data (whose path says
        nothing about what is in it); None for the built-in sets.
    """

    shape: tuple[int, ...]
    classes: int
    train_size: int | None = None
    digest: str | None = None


def default_root() -> Path:
    """Where downloaded, generated and decoded data is kept (``NAS_GYM_DATA`` overrides)."""
    return Path(os.environ.get("NAS_GYM_DATA", Path.home() / ".cache" / "nas-gym" / "data"))
