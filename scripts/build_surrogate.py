"""Collect the surrogate's training data: real trainings of a preset's architectures, resumably.

Usage::

    python scripts/build_surrogate.py --config mnist1d [--workers 2] [--rounds 20]
    python scripts/build_surrogate.py --config mnist1d --export-only   # data file from the cache, no training

The plan, its sources and how a build resumes: ``nas_gym.runs.surrogate_build``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from nas_gym.config import load_config, parse_overrides
from nas_gym.runs.surrogate_build import (
    PROPOSALS,
    Build,
    CacheOnlyBackend,
    PoolBackend,
    export,
    init_worker,
)
from nas_gym.storage.cache import ResultCache
from nas_gym.surrogates.data import SOURCES, DataPlan


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="mnist1d", help="preset name or YAML path")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--workers", type=int, default=2, help="spawned worker processes, one torch thread each")
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--uniform", type=int, default=50, help="uniform architectures per round")
    p.add_argument("--noise", type=int, default=10, help="of those, trained under every seed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="the first is the main seed")
    p.add_argument("--episodes", type=int, default=100, help="episodes of each agent trajectory")
    p.add_argument("--agents", nargs="+", default=["evolution", "qlearning", "reinforce"], choices=SOURCES[1:])
    p.add_argument("--cache", default=None, help="SQLite file of finished trainings; default builds/<preset>-surrogate.sqlite")
    p.add_argument("--out", default=None, help="data file; default builds/<preset>-surrogate-data.jsonl.gz")
    p.add_argument("--extra-uniform", type=int, default=0, help="uniform architectures trained after the rounds")
    p.add_argument("--export-only", action="store_true", help="write the data file from the cache, train nothing")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a plain kill unwinds: the pool stops its workers
    import torch

    torch.set_num_threads(1)  # the REINFORCE controller runs here; the workers have the cores
    config = load_config(args.config, parse_overrides(args.overrides))
    plan = DataPlan(seeds=tuple(dict.fromkeys(args.seeds)), uniform=args.uniform, noise=min(args.noise, args.uniform),
                    episodes=args.episodes, agents=tuple(args.agents), proposals=PROPOSALS, rounds=args.rounds,
                    extra_uniform=args.extra_uniform)
    root = Path(__file__).resolve().parent.parent
    cache = ResultCache(args.cache or root / "builds" / f"{config.name}-surrogate.sqlite")
    out = Path(args.out) if args.out else root / "builds" / f"{config.name}-surrogate-data.jsonl.gz"
    sources_log = cache.path.with_name(cache.path.name + ".sources.jsonl")
    started = time.perf_counter()
    if args.export_only:
        build = Build(config, plan, cache, CacheOnlyBackend(), log=sources_log, write_log=False)
        for r in range(args.rounds):
            build.run_round(r, train=False)
        build.run_extra(train=False)
        export(build, out, args.rounds, started)
        return 0
    pool = ProcessPoolExecutor(max_workers=args.workers, mp_context=mp.get_context("spawn"),
                               initializer=init_worker, initargs=(config, os.getpid()))
    try:
        build = Build(config, plan, cache, PoolBackend(pool, config.train), log=sources_log)
        for r in range(args.rounds):
            build.run_round(r, train=True)
            export(build, out, r + 1, started)
        if plan.extra_uniform:
            build.run_extra(train=True)
            export(build, out, args.rounds, started)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
