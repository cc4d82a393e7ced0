"""Table format 1 -> 2: one row per functional class, the one trained on its representative."""

from __future__ import annotations

import gzip
import json

import pytest

from nas_gym.benchmarks import migrate_table as tool
from nas_gym.benchmarks.header import make_header
from nas_gym.config import load_config
from nas_gym.evaluators.table import TableEvaluator, write_table
from nas_gym.spaces.cell.arch import canonical, structural


def _v1(tmp_path, collide: bool = False):
    """A format-1 cell table: a row per structural class whose numbers depend on the functional
    class only (as training the same network gives), so members of a class are bit-identical."""
    cfg = load_config("mnist1d-cell")
    space = cfg.search_space()
    reps = sorted({canonical(c) for c in space.enumerate()}, key=lambda c: c.ops)
    number = {rep: i for i, rep in enumerate(reps)}
    rows = []
    for shape in sorted({structural(c) for c in space.enumerate()}, key=lambda c: c.ops):
        i = number[canonical(shape)]
        if collide and i == 1:
            i = 0  # two classes with the very same numbers: the check must notice
        v = round(0.1 + 0.8 * i / len(reps), 6)
        rows.append({"arch": shape.text(), "params": 100 + i, "flops": 1000 + i, "status": ["ok", "ok"],
                     "reason": ["", ""], "val_acc": [v, v], "test_acc": [v, v], "train_loss": [1.0, 1.0],
                     "train_seconds": [0.3, 0.3]})
    header = {**make_header(cfg, [0, 1], rows, 1), "format_version": 1}
    path = tmp_path / "v1.jsonl.gz"
    write_table(path, header, rows)
    return cfg, path


def test_migrates_to_one_row_per_class_and_refuses_format_1(tmp_path):
    cfg, old = _v1(tmp_path)
    from nas_gym.config import ConfigError

    with pytest.raises(ConfigError, match="format version 1.*migrate_table.py"):
        TableEvaluator(cfg, path=old)
    new = tmp_path / "v2.jsonl.gz"
    assert tool.main([str(old), str(new)]) == 0
    with gzip.open(new, "rt") as f:
        header, *rows = (json.loads(line) for line in f)
    assert header["format_version"] == 2 and header["migrated"]["rows_before"] == 8765 and len(rows) == 5044
    space = cfg.search_space()
    for row in rows[::50]:
        cell = space.parse(row["arch"])
        assert structural(cell) == canonical(cell)  # the row trained on the representative
    ev = TableEvaluator(cfg, seed=0, path=new)
    assert len(ev.table.rows) == 5044


def test_bit_identical_rows_in_two_classes_stop_it_in_one_line(tmp_path, capsys):
    _, old = _v1(tmp_path, collide=True)
    new = tmp_path / "v2.jsonl.gz"
    assert tool.main([str(old), str(new)]) == 2
    assert "misses an equivalence" in capsys.readouterr().err and not new.exists()
