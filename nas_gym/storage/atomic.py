"""Writing a file so that a crash at any moment leaves either the old file or the new one.

Checkpoints, run records, tables, models and caches are all written this way: the bytes go to a
temporary file in the same folder (the same file system, so the rename is atomic), are flushed
to disk, and the temporary file is renamed over the target with ``os.replace``; the folder is then
synced so the rename itself survives a power cut. A failed write removes its temporary file and
leaves the target untouched. The temporary file is opened with ``open`` rather than ``mkstemp``,
whose 0600 mode would ignore the user's umask.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write`` on a binary file that becomes ``path`` only once it is complete and on disk.

    :param write: writes the whole content, e.g. ``lambda f: torch.save(state, f)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))
