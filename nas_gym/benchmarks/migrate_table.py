"""Convert a table of format version 1 to version 2: one row per key of today.

Usage::

    python scripts/migrate_table.py OLD.jsonl.gz NEW.jsonl.gz

Format 1 keyed cells by structure (dead edges dropped, nodes 1 and 2 swapped): 8,765 rows for the
NAS-Bench-201 cell, of which many compute the same function with the same parameters (1,162
groups of bit-identical rows in the shipped ``mnist1d-cell`` table). Version 2 keys them by
function (``nas_gym.spaces.cell.function``). Of each class the row kept is the one trained on
the class's representative, the very network the builder now builds for every cell of the
class, so every kept number is what training would give; the others are dropped. Rows of other
spaces are kept as they are. The script checks that no two bit-identical rows end in two
classes (the key would then miss an equivalence) and prints the counts; for other spaces it
only reports such groups.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import defaultdict
from collections.abc import Sequence

from nas_gym.benchmarks.table_file import FORMAT, FORMAT_VERSION, built_config, write_table
from nas_gym.errors import NasGymError
from nas_gym.spaces.cell.arch import Cell, canonical, structural


class MigrationError(NasGymError, ValueError):
    """A table that cannot be converted; nothing is written."""


def migrate(header: dict, rows: list[dict]) -> tuple[dict, list[dict], dict]:
    """The version-2 header and rows, and counts for the report.

    :raises MigrationError: bit-identical rows in two classes, or a class without a row trained
        on its representative."""
    space = built_config(header).search_space()
    archs = [space.parse(r["arch"]) for r in rows]
    by_result: dict[tuple, set[str]] = defaultdict(set)
    for a, r in zip(archs, rows, strict=True):
        by_result[json.dumps([r[k] for k in ("val_acc", "test_acc", "train_loss", "params", "flops")])].add(a.key())
    split = sum(len(keys) > 1 for keys in by_result.values())
    if split and not isinstance(archs[0], Cell):  # only the cell key changed in version 2
        print(f"note: {split} groups of bit-identical rows under different keys remain in this "
              f"{type(archs[0]).__name__} table", file=sys.stderr)
    elif split:
        raise MigrationError(f"{split} groups of bit-identical rows fall into different classes: the key misses an "
                             "equivalence; nothing written")
    kept: dict[str, dict] = {}
    for a, r in zip(archs, rows, strict=True):
        if not isinstance(a, Cell) or structural(a) == canonical(a):
            kept.setdefault(a.key(), {**r, "arch": a.text()})
    missing = {a.key() for a in space.enumerate()} - set(kept)
    if missing:
        raise MigrationError(f"{len(missing)} classes have no row trained on their representative; rebuild the "
                             "table with scripts/build_table.py")
    order = {k: i for i, k in enumerate(dict.fromkeys(a.key() for a in space.enumerate()))}
    new_rows = sorted(kept.values(), key=lambda r: order[space.parse(r["arch"]).key()])
    counts = {"format_1_rows": len(rows), "format_2_rows": len(new_rows), "distinct_results": len(by_result)}
    new_header = {**header, "format": FORMAT, "format_version": FORMAT_VERSION, "space_size": len(new_rows),
                  "migrated": {"from_format_version": 1, "rows_before": len(rows), "rows_after": len(new_rows),
                               "rule": "kept the row trained on each class's representative (nas_gym.spaces.cell.arch.canonical)"}}
    statuses = [s for r in new_rows for s in r["status"]]
    new_header["status_counts"] = {k: statuses.count(k) for k in sorted(set(statuses))}
    new_header["train_seconds_total"] = round(sum(x or 0.0 for r in new_rows for x in r["train_seconds"]), 1)
    return new_header, new_rows, counts


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old")
    p.add_argument("new")
    args = p.parse_args(argv)
    try:
        with gzip.open(args.old, "rt") as f:
            header = json.loads(f.readline())
            rows = [json.loads(line) for line in f if line.strip()]
    except (OSError, EOFError, ValueError) as e:
        print(f"migrate_table: {args.old} cannot be read ({type(e).__name__}); give a format-1 nas-gym table",
              file=sys.stderr)
        return 2
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("format_version") != 1:
        print(f"migrate_table: {args.old} is not a format-1 nas-gym table; nothing to convert", file=sys.stderr)
        return 2
    try:
        new_header, new_rows, counts = migrate(header, rows)
    except (MigrationError, KeyError, TypeError) as e:
        print(f"migrate_table: {args.old}: {e}", file=sys.stderr)
        return 2
    size = write_table(args.new, new_header, new_rows)
    print(f"wrote {args.new}: {counts['format_1_rows']} rows ({counts['distinct_results']} distinct results) -> "
          f"{counts['format_2_rows']} rows, {size:,} bytes")
    return 0

