"""Print a learning-curve table's figures (seed agreement, fidelity, spread, optimum, how hard the
optimum is to find, build cost) from a finished table or from a partial build's lines file.

    python scripts/table_report.py --config mnist1d-noisy-cell --lines builds/mnist1d-noisy-cell-curves.jsonl
    python scripts/table_report.py --config mnist1d-noisy-cell --table nas_gym/tables/mnist1d-noisy-cell.jsonl.gz

A partial build trains cells in a seeded random order, so its complete cells are a uniform sample
of the space; its figures estimate the finished table's (the optimum and the evaluations to reach
it excepted: those need every cell). Definitions: ``nas_gym/benchmarks/table_stats.py``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from nas_gym.benchmarks.table_stats import figures
from nas_gym.config import load_config


def _grid(members: list[list[dict]], field: str) -> np.ndarray:
    epochs = max(len(m[field]) for seeds in members for m in seeds)
    out = np.full((len(members), len(members[0]), epochs), np.nan)
    for i, seeds in enumerate(members):
        for j, m in enumerate(seeds):
            values = [np.nan if v is None else v for v in m[field]]
            out[i, j, : len(values)] = values
    return out


def from_lines(path: Path, space, seeds: int) -> tuple[list[str], list[list[dict]]]:
    from nas_gym.benchmarks.curves import read_lines

    by: dict[str, dict[int, dict]] = {}
    for row in read_lines(path):
        by.setdefault(space.parse(row["arch"]).key(), {})[row["seed"]] = row
    keys = [k for k, rows in by.items() if len(rows) >= seeds]
    return keys, [[by[k][s] for s in sorted(by[k])[:seeds]] for k in keys]


def from_table(path: Path, space) -> tuple[list[str], list[list[dict]]]:
    from nas_gym.benchmarks.table_file import load_table

    table = load_table(path)
    keys, members = [], []
    for row in table.rows:
        c = row["curves"]
        keys.append(space.parse(row["arch"]).key())
        members.append([{"val": v, "test": t, "seconds": s}
                        for v, t, s in zip(c["val_acc"], c["test_acc"], c["train_seconds"], strict=True)])
    return keys, members


def curve_source_parser(description: str) -> argparse.ArgumentParser:
    """The options every reader of a curve table shares: the preset, and either a build's lines
    file or a finished table."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", default="mnist1d-noisy-cell")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--lines", type=Path, help="a curve build's lines file (partial or complete)")
    src.add_argument("--table", type=Path, help="a finished table with learning curves")
    return p


def main(argv: list[str] | None = None) -> int:
    p = curve_source_parser(__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args(argv)
    space = load_config(args.config).search_space()
    sizes = Counter(a.key() for a in space.enumerate())
    keys, members = from_lines(args.lines, space, args.seeds) if args.lines else from_table(args.table, space)
    if not keys:
        print("no cell has every seed yet")
        return 1
    val, test, secs = (_grid(members, f) for f in ("val", "test", "seconds"))
    f = figures(val, test, secs, [sizes[k] for k in keys])
    share = f"{f.cells:,} of {len(sizes):,} functional classes" + ("" if f.cells == len(sizes) else " (a uniform sample)")
    print(f"{share}, {f.seeds} seeds, {val.shape[2]} epochs")
    print(f"seed-to-seed tau {f.tau_all:.3f}; top-10% tau {f.tau_top:.3f}")
    print("epoch vs last: " + ", ".join(f"{e + 1}: {t:.3f}" for e, t in enumerate(f.vs_last)))
    print(f"median val {f.median:.2f}%; within-cell sd {f.within:.2f} points; between-cell sd {f.between:.2f} points")
    of = "" if f.cells == len(sizes) else " of the sample"
    print(f"best seed-mean val{of} {f.optimum:.2f}% (its test {f.optimum_test:.2f}%)")
    print(f"random search, expected evaluations to the top 1%{of}: {f.draws_top1:.0f}; to the best{of}: "
          f"{f.draws_optimum:.0f}")
    print(f"CPU-hours in these members: {f.cpu_hours:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
