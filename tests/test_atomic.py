"""Atomic writes: a write that fails part-way leaves the old file whole and no temporary file."""

from __future__ import annotations

import pytest

from nas_gym.storage.atomic import atomic_write, atomic_write_text


def test_new_content_replaces_old_and_folders_are_made(tmp_path):
    path = tmp_path / "a" / "b" / "state.json"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "state.bin"
    atomic_write(path, lambda f: f.write(b"old"))

    def crash(f):
        f.write(b"half of the new con")
        raise KeyboardInterrupt  # an interrupt mid-write is the case that matters

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.bin"]
