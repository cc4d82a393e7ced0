"""Reading ``.npz`` files that may be damaged or crafted: data only, memory bounded by the file.

``np.load`` already refuses pickled object arrays with ``allow_pickle=False``, but it allocates
whatever shape an array's header claims before reading a byte of data: a 1 kB file claiming a
shape of 10^12 floats stops the process with a ``MemoryError`` (``_ArrayMemoryError``). Here each
member's header is read first and its size checked against what the member can hold: a deflated
member expands at most about 1,032 times (deflate's limit), a stored one not at all. Every
failure (a damaged zip, a bad header, a missing array) comes back as one :class:`NpzError`.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from collections.abc import Sequence

import numpy as np

from nas_gym.errors import NasGymError

DEFLATE_RATIO = 1100  # deflate's maximum expansion is 1032:1; a little room above it
MAX_BYTES = 1 << 30  # no array nas-gym writes comes near a gibibyte


class NpzError(NasGymError, ValueError):
    """An ``.npz`` that cannot be read as the arrays asked for."""


def load_arrays(path: str | os.PathLike[str], names: Sequence[str], max_bytes: int | None = MAX_BYTES) -> dict[str, np.ndarray]:
    """The arrays ``names`` of the ``.npz`` at ``path``, after checking every header.

    :param max_bytes: a cap on any one array besides what the file can hold (None: only that).

    :raises NpzError: naming the array and what is wrong (the caller adds the file's fix).
    """
    try:
        with zipfile.ZipFile(path) as z:
            out = {}
            for name in names:
                try:
                    info = z.getinfo(f"{name}.npy")
                except KeyError:
                    raise NpzError(f"no array {name!r}") from None
                bound = info.file_size if info.compress_type == zipfile.ZIP_STORED else min(
                    info.file_size, DEFLATE_RATIO * max(info.compress_size, 1))
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise NpzError(f"array {name!r} has an unknown .npy version {version}")
                    if dtype.hasobject:
                        raise NpzError(f"array {name!r} holds Python objects")
                    size = math.prod(shape) * dtype.itemsize
                    if any(n < 0 for n in shape) or size > (bound if max_bytes is None else min(bound, max_bytes)):
                        raise NpzError(f"array {name!r} claims shape {shape} ({size:,} bytes), more than the file holds")
                with z.open(info) as f:
                    out[name] = np.lib.format.read_array(f, allow_pickle=False)
            return out
    except NpzError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, TypeError, KeyError, MemoryError,
            OverflowError, SyntaxError, IndexError) as e:
        raise NpzError(f"{type(e).__name__}: {' '.join(str(e).split())[:160]}") from None
