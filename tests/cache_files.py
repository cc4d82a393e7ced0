"""Files that sit where a cache should be but are not nas-gym caches (shared by the cache and
bad-input tests)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def write_garbage(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


def write_foreign_sqlite(path: Path) -> None:
    """Another program's database, with data that must survive being pointed at."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.execute("INSERT INTO notes VALUES ('precious')")
    conn.commit()
    conn.close()
