"""Range and type checks of a table file's lines, run once when a table is loaded.

A table is read by every search on it, and a wrong value in it (an accuracy of 7.5, a NaN, a
negative second) would be taken as a result and could become the best architecture; so each
line is checked on load and a bad one refused with the line's number.
"""

from __future__ import annotations

import math
from typing import Any

from nas_gym.results import OK


def header_problem(header: dict[str, Any]) -> str | None:
    """What is wrong with a header's seeds and context hashes (None if nothing)."""
    seeds, hashes = header.get("seeds"), header.get("context_hashes")
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds) or len(set(seeds)) != len(seeds):
        return "seeds are not a list of distinct integers"
    if not isinstance(hashes, dict) or not all(isinstance(hashes.get(str(s)), str) for s in seeds):
        return "context hashes do not cover its seeds"
    return None


def is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def row_problem(row: Any, n_seeds: int) -> str | None:
    """What is wrong with one table line (None if nothing): types, lengths and ranges, checked
    once on load so that no impossible value (an accuracy of 7.5, a negative second) reaches a search."""
    if not isinstance(row, dict):
        return "is not a mapping"
    if not isinstance(row.get("arch"), str):
        return "has no architecture text"
    for key in ("params", "flops"):
        if type(row.get(key)) is not int or row[key] < 0:
            return f"has {key} {str(row.get(key))[:40]!r}, not a count"
    lists = {k: row.get(k) for k in ("status", "reason", "val_acc", "test_acc", "train_loss", "train_seconds")}
    for key, values in lists.items():
        if not isinstance(values, list) or len(values) != n_seeds:
            return f"has a {key} that is not one entry per seed ({n_seeds})"
    if not all(isinstance(v, str) for v in lists["status"] + lists["reason"]):
        return "has a status or reason that is not text"
    for key in ("val_acc", "test_acc"):
        if not all(v is None or (is_number(v) and 0.0 <= v <= 1.0) for v in lists[key]):
            return f"has a {key} outside [0, 1]"
    if any(s == OK and v is None for s, v in zip(lists["status"], lists["val_acc"], strict=True)):
        return "has an 'ok' seed without a val_acc"
    if not all(v is None or (is_number(v) and v >= 0) for v in lists["train_loss"]):
        return "has a negative or non-numeric train_loss"
    if not all(v is None or (is_number(v) and v > 0) for v in lists["train_seconds"]):
        return "has train_seconds that are not positive"
    return None
