"""Benchmark the evaluation backends: the same architectures through serial, process and Ray.

One fixed list of distinct architectures, sampled with a fixed seed from the preset's space, is
trained by each backend in turn, each with a fresh in-memory cache (nothing is reused between
backends or from disk). The wall time includes everything a search would pay for that batch:
starting the workers (and Ray), loading the data in each, and waiting for the last architecture.

Columns: ``start`` is the time to the first result minus that result's own training time (what
starting the backend cost), ``busy`` is the share of ``workers x seconds`` spent training (the
rest is start-up, the idle tail while the last architectures finish, and overhead), ``same``
says whether val_acc, train_loss, params, flops and status equal the serial run's exactly.

Usage: ``python scripts/bench_parallel.py [--archs 24] [--preset mnist1d] [--workers 2]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nas_gym.config import Config, load_config
from nas_gym.evaluators.base import EvalResult
from nas_gym.evaluators.cache import MemoryCache
from nas_gym.evaluators.training import Backend, OnResult, TrainingEvaluator, make_backend
from nas_gym.spaces.chain import Chain


class Timed:
    """Wraps a backend and records when each result reaches the driver."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.first: tuple[float, str] = (float("nan"), "")

    def run(self, archs: Sequence[Chain], on_result: OnResult | None = None) -> list[EvalResult]:
        def record(i: int, result: EvalResult) -> None:
            if not self.first[1]:
                self.first = (time.perf_counter(), result.arch)
            if on_result is not None:
                on_result(i, result)

        return self.inner.run(archs, on_result=record)

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class Row:
    backend: str
    workers: int
    seconds: float
    start: float
    train_seconds: float
    results: list[EvalResult]


def sample_archs(config: Config, n: int, seed: int) -> list[Chain]:
    """``n`` distinct architectures: duplicates would be trained once and flatter every backend."""
    space, rng = config.search_space(), np.random.default_rng(seed)
    found: dict[str, Chain] = {}
    for _ in range(100 * n):
        arch = space.sample(rng)
        found.setdefault(arch.key(), arch)
        if len(found) == n:
            return list(found.values())
    raise SystemExit(f"the {config.name} space has fewer than {n} architectures")


def run_backend(config: Config, backend: str, workers: int, archs: list[Chain]) -> Row:
    cfg = load_config(config, overrides={"evaluator.backend": backend, "evaluator.workers": workers,
                                         "evaluator.cache": None})
    start = time.perf_counter()
    timed = Timed(make_backend(cfg))
    with TrainingEvaluator(cfg, cache=MemoryCache(), backend=timed) as ev:
        results = ev.evaluate_many(archs)
        seconds = time.perf_counter() - start
    # arrivals are in the order the backend reported, results in batch order: pair them by arch.
    by_arch = {r.arch: r for r in results}
    first_arrival, first_arch = timed.first
    start_cost = first_arrival - start - by_arch[first_arch].train_seconds
    return Row(backend, workers if backend != "serial" else 1, seconds, max(0.0, start_cost),
               ev.stats.train_seconds, results)


def comparable(results: Sequence[EvalResult]) -> list[tuple]:
    return [(r.arch, r.val_acc, r.train_loss, r.params, r.flops, r.status) for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=24, help="architectures in the batch (default 24)")
    parser.add_argument("--preset", default="mnist1d", help="preset whose space and budget are used")
    parser.add_argument("--workers", type=int, default=2, help="workers of the process and Ray backends")
    parser.add_argument("--seed", type=int, default=0, help="seed of the architecture sample")
    parser.add_argument("--backends", default="serial,process,ray", help="comma-separated; serial first")
    args = parser.parse_args()

    config = load_config(args.preset, overrides={"runtime.device": "cpu"})
    archs = sample_archs(config, args.archs, args.seed)
    print(f"{len(archs)} architectures from {config.name} (seed {args.seed}), {config.train.epochs} epochs, "
          f"1 torch thread per evaluation")
    rows = [run_backend(config, b, args.workers, archs) for b in args.backends.split(",")]

    serial = next((r for r in rows if r.backend == "serial"), None)
    print("\n| backend | workers | seconds | evals/hour | speed-up | start s | busy | same as serial |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        speedup = f"{serial.seconds / r.seconds:.2f}x" if serial else "-"
        same = "yes" if serial and comparable(r.results) == comparable(serial.results) else "no" if serial else "-"
        busy = r.train_seconds / (r.workers * r.seconds)
        print(f"| {r.backend} | {r.workers} | {r.seconds:.1f} | {len(archs) * 3600 / r.seconds:,.0f} | {speedup} "
              f"| {r.start:.1f} | {busy:.0%} | {same} |")
    failed = sum(not x.ok for x in rows[0].results)
    print("\nmean train_seconds per architecture: "
          + ", ".join(f"{r.backend} {r.train_seconds / len(archs):.2f}" for r in rows) + f"; failures: {failed}")


if __name__ == "__main__":
    main()
