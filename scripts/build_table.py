"""Build the tabular benchmark: train every architecture of a preset's space, once per seed.

Usage::

    python scripts/build_table.py --config mnist1d-tiny --seeds 0 1 [--workers 2] [--cache PATH] [--out PATH]
    python scripts/build_table.py --config PRESET --seeds 0 1 2 --curves [--group 8] [--partial LINES]
    python scripts/build_table.py --config mnist1d-tiny --estimate 20   # time 20 evaluations, project the total

How, and how a build resumes: ``nas_gym.benchmarks.table_build``; the learning-curve build:
``nas_gym.benchmarks.curves``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nas_gym.benchmarks.header import make_header, seed_configs
from nas_gym.benchmarks.table_build import (
    DEFAULT_CACHE,
    Reporter,
    build_context,
    distinct_architectures,
    evaluate_all,
    make_rows,
)
from nas_gym.benchmarks.table_file import SUFFIX, TABLE_DIR, write_table
from nas_gym.config import Config, load_config, parse_overrides
from nas_gym.spaces.base import Architecture
from nas_gym.storage.cache import ResultCache


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="mnist1d-tiny", help="preset name or YAML path")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (e.g. train.epochs=4); repeatable")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--workers", type=int, default=2, help="spawned worker processes, one torch thread each")
    p.add_argument("--cache", default=str(DEFAULT_CACHE), help="SQLite file holding finished evaluations (resume)")
    p.add_argument("--out", default=None, help=f"table file; default nas_gym/tables/<preset>{SUFFIX}")
    p.add_argument("--curves", action="store_true",
                   help="record learning curves (every epoch), several cells per training pass; resumable from --partial")
    p.add_argument("--partial", default=None, help="--curves: the lines file of finished members "
                   "(default builds/<preset>-curves.jsonl); commit it to keep a partial build")
    p.add_argument("--group", type=int, default=8, help="--curves: cells per training pass")
    p.add_argument("--estimate", type=int, default=0, metavar="N",
                   help="train N random (architecture, seed) pairs, print the projected build time, write nothing")
    return p


def _build_curves(config: Config, archs: Sequence[Architecture], seeds: Sequence[int], args: argparse.Namespace) -> int:
    """Train missing members into the partial file; write the table once every member is there."""
    from nas_gym.benchmarks import curves

    partial = Path(args.partial or f"builds/{config.name}-curves.jsonl")
    # a seeded shuffle: a partial build is a uniform sample of the space, useful before it is complete
    order = [archs[int(i)] for i in np.random.default_rng(0).permutation(len(archs))]
    start = time.perf_counter()
    before = len(curves.read_lines(partial))

    def progress(done: int, total: int) -> None:
        print(f"pass {done}/{total} ({time.perf_counter() - start:.0f}s)", flush=True)

    lines = curves.build(config, [a.text() for a in order], seeds, partial, workers=args.workers, group=args.group,
                         on_pass=progress)
    want = len(archs) * len(seeds)
    print(f"{partial}: {len(lines)} of {want} members ({len(lines) - before} this run)", flush=True)
    space = config.search_space()
    if len({(space.parse(r["arch"]).key(), r["seed"]) for r in lines}) < want:
        return 0
    rows = curves.table_rows(config.search_space(), archs, seeds, lines)
    out = Path(args.out) if args.out else TABLE_DIR / f"{config.name}{SUFFIX}"
    size = write_table(out, make_header(config, seeds, rows, args.workers), rows)
    print(f"wrote {out}: {len(rows)} architectures x {len(seeds)} seeds with curves, {size:,} bytes", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # A plain kill (nohup builds) then unwinds like Ctrl-C: the pool stops its workers, and
    # every finished evaluation is already in the cache for the next run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config = load_config(args.config, parse_overrides(args.overrides))
    archs = distinct_architectures(config)
    seeds = list(dict.fromkeys(args.seeds))
    if args.curves:  # its state is the lines file, not the cache
        return _build_curves(config, archs, seeds, args)
    cache = ResultCache(args.cache)
    start = time.perf_counter()
    if args.estimate:
        rng = np.random.default_rng(0)
        sample = [archs[i] for i in rng.choice(len(archs), size=min(args.estimate, len(archs)), replace=False)]
        fresh = evaluate_all(config, seeds[:1], sample, cache, args.workers)
        wall = time.perf_counter() - start
        per = wall / len(sample)
        print(f"{len(sample)} evaluations in {wall:.1f}s with {args.workers} workers (data loading included): "
              f"{per:.2f}s each; {len(archs)} x {len(seeds)} seeds projected at "
              f"{per * len(archs) * len(seeds) / 60:.1f} min (mean train_seconds "
              f"{np.mean([r.train_seconds for r in fresh.values()]):.2f}s)")
        return 0
    total = len(archs) * len(seeds)
    stored = sum(hit is not None for s, c in seed_configs(config, seeds).items()
                 for hit in cache.get_many(archs, build_context(c)))
    reporter = Reporter(total, stored)
    try:
        results = evaluate_all(config, seeds, archs, cache, args.workers, reporter.advance)
    finally:
        reporter.close()
    rows = make_rows(archs, seeds, results)
    header = make_header(config, seeds, rows, args.workers)
    out = Path(args.out) if args.out else TABLE_DIR / f"{config.name}{SUFFIX}"
    size = write_table(out, header, rows)
    print(f"wrote {out}: {len(rows)} architectures x {len(seeds)} seeds, {size:,} bytes, "
          f"{time.perf_counter() - start:.0f}s this run; status {header['status_counts']}", flush=True)
    now = load_config(args.config, parse_overrides(args.overrides))
    if now.context_hash() != config.context_hash() or now.space != config.space:
        print(f"warning: {args.config} changed during the build; the table describes it as it was at the start, "
              "and TableEvaluator will refuse the new version: run this script again", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
