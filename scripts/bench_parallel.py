"""Benchmark whole searches with workers: ``nas-gym search`` run as a command, serial vs process vs Ray.

What a user waits for, start-up included: each run is one ``nas-gym search --agent random
--config mnist1d --episodes N`` subprocess, timed from its launch to its exit (interpreter,
imports, starting the workers or Ray, loading the data, every batch, shutdown). Each run has its
own fresh cache file and run folder, so nothing is reused between runs or from disk; the dataset
file is made once beforehand, as it is after any first use.

Random search draws the same architectures whatever its batch size, so every backend trains the
same ones: ``same`` says whether a run's ``evaluations.csv`` (architecture, val_acc, params, flops,
status, in order) equals the serial run's. Runs are interleaved (serial, process, Ray, serial, ...)
so that a change in the machine's load hits every backend alike; with ``--repeats R`` each cell is
the median of R runs. ``speed-up`` is serial seconds over the backend's, from this one invocation;
``target`` is the one the issue sets for ``--workers 2``.

Usage: ``python scripts/bench_parallel.py [--episodes 16,64] [--preset mnist1d] [--workers 2]
[--repeats 1] [--backends serial,process,ray]``
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nas_gym.config import load_config
from nas_gym.data import load_dataset

# speed-up over serial that issue 16 asks of a whole search with two workers, by (backend, episodes)
TARGETS = {("process", 16): 1.5, ("process", 64): 1.7, ("ray", 16): 1.3, ("ray", 64): 1.5}
COMPARED = ("arch", "val_acc", "params", "flops", "status")


def nas_gym_command() -> str:
    """The ``nas-gym`` entry point installed beside this interpreter, as a user runs it."""
    exe = Path(sys.executable).with_name("nas-gym")
    if not exe.is_file():
        raise SystemExit(f"no nas-gym command beside {sys.executable}; pip install -e . first")
    return str(exe)


def run_search(folder: Path, backend: str, workers: int, episodes: int, args: argparse.Namespace) -> tuple[float, list]:
    """Seconds from launch to exit of one search, and its evaluations in order."""
    command = [nas_gym_command(), "search", "--agent", args.agent, "--config", args.preset, "--episodes", str(episodes),
               "--seed", str(args.seed), "--workers", str(workers), "--backend", backend, "--logdir", str(folder),
               "--set", f"evaluator.cache={folder / 'cache.sqlite'}", "--set", "runtime.device=cpu"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)}\nfailed with exit code {done.returncode}:\n{done.stderr[-2000:]}")
    (run_dir,) = [p for p in folder.iterdir() if p.is_dir()]
    with (run_dir / "evaluations.csv").open(newline="") as f:
        rows = [tuple(row[k] for k in COMPARED) for row in csv.DictReader(f)]
    if len(rows) != episodes:
        raise SystemExit(f"{run_dir}: {len(rows)} evaluations recorded for {episodes} episodes")
    return seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", default="16,64", help="comma-separated search lengths (default 16,64)")
    parser.add_argument("--preset", default="mnist1d", help="preset of every search (default mnist1d)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the process and Ray backends")
    parser.add_argument("--agent", default="random", help="agent of every search (default random: the same "
                        "architectures whatever the batch size)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every search")
    parser.add_argument("--repeats", type=int, default=1, help="runs per cell; the table shows medians")
    parser.add_argument("--backends", default="serial,process,ray", help="comma-separated; serial first")
    args = parser.parse_args()
    lengths = [int(n) for n in args.episodes.split(",")]
    backends = args.backends.split(",")

    load_dataset(load_config(args.preset).data)  # the data file exists before the first timed run
    print(f"nas-gym search --agent {args.agent} --config {args.preset}, a fresh cache per run, {os.cpu_count()} CPUs, "
          f"1 torch thread per evaluation; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    seconds: dict[tuple[str, int], list[float]] = {}
    evaluations: dict[tuple[str, int], list] = {}
    with tempfile.TemporaryDirectory(prefix="bench_parallel_") as tmp:
        for episodes in lengths:
            for repeat in range(args.repeats):
                for backend in backends:
                    workers = 1 if backend == "serial" else args.workers
                    folder = Path(tmp) / f"{backend}-{episodes}-{repeat}"
                    took, rows = run_search(folder, backend, workers, episodes, args)
                    seconds.setdefault((backend, episodes), []).append(took)
                    evaluations.setdefault((backend, episodes), rows)
                    print(f"  {episodes} episodes, {backend}: {took:.1f} s", file=sys.stderr, flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")

    print("| episodes | backend | workers | seconds | speed-up | target | same as serial |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for episodes in lengths:
        serial = seconds.get(("serial", episodes))
        for backend in backends:
            median = statistics.median(seconds[backend, episodes])
            speedup = statistics.median(serial) / median if serial else None
            target = TARGETS.get((backend, episodes)) if args.workers == 2 else None
            same = "-" if backend == "serial" or not serial else \
                "yes" if evaluations[backend, episodes] == evaluations["serial", episodes] else "no"
            print(f"| {episodes} | {backend} | {1 if backend == 'serial' else args.workers} | {median:.1f} "
                  f"| {f'{speedup:.2f}x' if speedup else '-'} | {f'{target:.1f}x' if target else '-'} | {same} |")


if __name__ == "__main__":
    main()
