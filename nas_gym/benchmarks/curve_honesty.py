"""Honesty of a learning-curve table: retrain members one at a time through the ordinary trainer
and compare every epoch.

A curve table is built by the grouped trainer (``nas_gym.training.members``: several cells and
their seeds in one pass), whose sums run in another order than training a network alone; a
table is honest when what it records is what a user gets from ``nas-gym eval``. So this retrains
cells drawn uniformly from the complete ones (all their seeds), each seed as a pass of its own
(one member: no stacking, no grouping), and reports, per epoch, how far the validation and test
accuracy land from the recorded curve. Parameters and FLOPs must match exactly.

    python scripts/curve_honesty.py --config mnist1d-noisy-cell --lines builds/mnist1d-noisy-cell-curves.jsonl --cells 8
    python scripts/curve_honesty.py --config mnist1d-noisy-cell --table nas_gym/tables/mnist1d-noisy-cell.jsonl.gz
    python scripts/curve_honesty.py --config mnist1d-noisy-cell --lines builds/mnist1d-noisy-cell-curves.jsonl --repass 1

``--repass`` is the exact check: the grouped pass is deterministic on a CPU, so training a pass's
cells again together reproduces every member bit for bit, where training one alone (sums in
another order) sends it on a different, equally likely trajectory.

The same functions serve the test that holds a table to the tolerance measured here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas_gym.config import Config, RuntimeConfig, load_config


@dataclass(frozen=True)
class Member:
    """One (cell, seed) as recorded: its accuracies after each epoch, parameters and FLOPs."""

    arch: str
    seed: int
    val: list[float]
    test: list[float]
    params: int
    flops: int


@dataclass(frozen=True)
class Difference:
    """Retrained minus recorded, in accuracy points, after each epoch."""

    member: Member
    val: list[float]
    test: list[float]
    same_size: bool  # parameters and FLOPs equal


def members_from_lines(path: Path, config: Config) -> dict[str, list[Member]]:
    """Canonical key -> the recorded members of a curve build's lines file (any seeds it has)."""
    from nas_gym.benchmarks.curves import read_lines

    space = config.search_space()
    out: dict[str, list[Member]] = {}
    for r in read_lines(path):
        if r.get("status", "ok") == "ok":
            out.setdefault(space.parse(r["arch"]).key(), []).append(
                Member(r["arch"], int(r["seed"]), list(r["val"]), list(r["test"]), int(r["params"]), int(r["flops"])))
    return out


def members_from_table(path: Path, config: Config) -> dict[str, list[Member]]:
    """Canonical key -> the recorded members of a finished table with learning curves."""
    from nas_gym.benchmarks.table_file import load_table

    table, space = load_table(path), config.search_space()
    out: dict[str, list[Member]] = {}
    for row in table.rows:
        c = row["curves"]
        out[space.parse(row["arch"]).key()] = [
            Member(row["arch"], int(s), list(v), list(t), int(row["params"]), int(row["flops"]))
            for s, v, t, status in zip(table.seeds, c["val_acc"], c["test_acc"], row["status"], strict=True)
            if status == "ok"]
    return out


def draw(members: dict[str, list[Member]], seeds: int, cells: int, seed: int) -> list[list[Member]]:
    """``cells`` complete cells (all ``seeds`` members recorded), drawn uniformly with ``seed``."""
    complete = sorted(k for k, ms in members.items() if len(ms) >= seeds)
    picked = np.random.default_rng(seed).choice(len(complete), size=min(cells, len(complete)), replace=False)
    return [sorted(members[complete[int(i)]], key=lambda m: m.seed)[:seeds] for i in picked]


def retrain(config: Config, members: list[Member]) -> list[Difference]:
    """Train each member alone (one torch thread, CPU) with its seed; its differences per epoch."""
    import torch

    from nas_gym.data import load_dataset
    from nas_gym.training.members import evaluate_members

    torch.set_num_threads(1)
    data = load_dataset(config.data)
    space = config.search_space(data.input_shape)
    runtime = RuntimeConfig(device="cpu", threads=1)
    out = []
    for m in members:
        train = load_config(config, {"train.seed": m.seed}).train
        (got,) = evaluate_members([(space.parse(m.arch), (m.seed,))], data, train, runtime, space=space,
                                  want_test=True, epoch_metrics=True)[0]
        val = [100 * (p.val_acc - v) for p, v in zip(got.curve, m.val, strict=True)]
        test = [100 * ((p.test_acc or 0.0) - t) for p, t in zip(got.curve, m.test, strict=True)]
        out.append(Difference(m, val, test, (got.result.params, got.result.flops) == (m.params, m.flops)))
    return out


def last_passes(path: Path, config: Config, passes: int, group: int, seeds: int) -> list[Member]:
    """The members of the ``passes``-th pass from the end of a build's lines file: a pass appends
    its ``group`` cells x ``seeds`` lines together, so they sit side by side at the end."""
    from nas_gym.benchmarks.curves import read_lines

    size = group * seeds
    rows = read_lines(path)
    block = rows[len(rows) - passes * size:][:size]
    if len(block) < size or len({r["arch"] for r in block}) != group:
        raise ValueError(f"{path}: the lines {passes} passes from the end are not one pass of {group} cells x {seeds} seeds")
    return [Member(r["arch"], int(r["seed"]), list(r["val"]), list(r["test"]), int(r["params"]), int(r["flops"]))
            for r in block]


def repass(config: Config, members: list[Member]) -> list[bool]:
    """Train ``members`` again as the build did (one grouped pass of their cells and seeds, CPU,
    one thread); for each, whether every recorded epoch came back bit for bit."""
    import torch

    from nas_gym.data import load_dataset
    from nas_gym.training.members import evaluate_members

    torch.set_num_threads(1)
    data = load_dataset(config.data)
    space = config.search_space(data.input_shape)
    cells = list(dict.fromkeys(m.arch for m in members))
    seeds = tuple(sorted({m.seed for m in members}))
    got = evaluate_members([(space.parse(c), seeds) for c in cells], data, config.train, RuntimeConfig(device="cpu", threads=1),
                           space=space, want_test=True, epoch_metrics=True)
    curves = {(c, s): m.curve for c, row in zip(cells, got, strict=True) for s, m in zip(seeds, row, strict=True)}
    return [[p.val_acc for p in curves[m.arch, m.seed]] == m.val and [p.test_acc for p in curves[m.arch, m.seed]] == m.test
            for m in members]


def main(argv: list[str] | None = None) -> int:
    from nas_gym.benchmarks.table_report import curve_source_parser

    p = curve_source_parser(__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3, help="seeds a cell must have to be drawn")
    p.add_argument("--cells", type=int, default=8)
    p.add_argument("--seed", type=int, default=0, help="draws the cells")
    p.add_argument("--repass", type=int, metavar="N", help="instead: train the N-th pass from the end of --lines again "
                   "as the build did, and check every member comes back bit for bit")
    p.add_argument("--group", type=int, default=8, help="--repass: cells per pass of the build")
    args = p.parse_args(argv)
    config = load_config(args.config)
    if args.repass:
        members = last_passes(args.lines, config, args.repass, args.group, args.seeds)
        same = repass(config, members)
        print(f"{sum(same)} of {len(same)} members of that pass came back bit for bit"
              + "".join(f"\n  differs: {m.arch} seed {m.seed}" for m, ok in zip(members, same, strict=True) if not ok))
        return 0 if all(same) else 1
    recorded = members_from_lines(args.lines, config) if args.lines else members_from_table(args.table, config)
    start = time.process_time()
    diffs = [d for cell in draw(recorded, args.seeds, args.cells, args.seed) for d in retrain(config, cell)]
    if not diffs:
        print("no complete cell to retrain")
        return 1
    for d in diffs:
        print(f"{d.member.arch} seed {d.member.seed}: val " + " ".join(f"{v:+.2f}" for v in d.val)
              + " | test " + " ".join(f"{t:+.2f}" for t in d.test) + ("" if d.same_size else " | SIZE DIFFERS"))
    for name in ("val", "test"):
        grid = np.abs(np.array([getattr(d, name) for d in diffs]))
        print(f"{name}: largest |difference| per epoch (points) " + " ".join(f"{x:.2f}" for x in grid.max(axis=0))
              + "; median " + " ".join(f"{x:.2f}" for x in np.median(grid, axis=0)))
    print(f"{len(diffs)} members retrained alone in {time.process_time() - start:.0f} CPU-seconds; "
          f"sizes equal: {all(d.same_size for d in diffs)}")
    return 0
