"""Benchmark several seeds of one architecture trained in one pass against separate runs.

For the median architecture of a preset (median by multiply-accumulates over a fixed seeded
sample of its space) and the sample's quartiles, times K seeds as (a) one pass of
``nas_gym.training.train.evaluate_seeds``, (b) K runs of ``evaluate_architecture`` (the current trainer)
and (c) K runs of the trainer before issue 16 (``bench_trainer.previous_trainer``). Runs are
interleaved and repeated; ratios are medians of per-repeat ratios (one repeat shares a time
window, so a busy spell on the shared CPU hits all three alike). One torch thread. Also prints
how far each seed's result in one pass is from its separate run.

Usage: ``python scripts/bench_multiseed.py [--preset mnist1d] [--k 3] [--repeats 5] [--quick]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trainer import previous_trainer  # noqa: E402  (a sibling script: the pre-issue-16 baseline)

from nas_gym.config import RuntimeConfig, load_config  # noqa: E402
from nas_gym.data import load_dataset  # noqa: E402
from nas_gym.training.train import evaluate_architecture, evaluate_seeds  # noqa: E402

RUNTIME = RuntimeConfig(device="cpu", threads=1)


def sample_by_flops(space, shape: tuple[int, ...], classes: int, n: int, seed: int) -> list[tuple[int, object]]:
    """``n`` architectures drawn with ``seed``, sorted by multiply-accumulates."""
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(n)]
    return sorted(((space.count_flops(a, shape, classes), a) for a in archs), key=lambda t: t[0])


def _timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def compare(arch, space, data, train, k: int, repeats: int) -> None:
    seeds = list(range(k))
    configs = [train.model_copy(update={"seed": s}) for s in seeds]
    ways: dict[str, Callable[[], list]] = {
        "one pass": lambda: evaluate_seeds(arch, data, train, RUNTIME, seeds, space=space),
        "separate": lambda: [evaluate_architecture(arch, data, c, RUNTIME, space=space) for c in configs],
        "previous": lambda: [previous_trainer(arch, data, c, space) for c in configs],
    }
    names = list(ways)
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    outputs: dict[str, object] = {}
    for r in range(repeats):
        for name in names[r % 3 :] + names[: r % 3]:
            wall, cpu, outputs[name] = _timed(ways[name])
            times[name].append((wall, cpu))

    def med(name: str, i: int) -> float:
        return statistics.median(t[i] for t in times[name])

    def ratio(name: str, i: int) -> float:
        return statistics.median(a[i] / b[i] for a, b in zip(times[name], times["one pass"], strict=True))

    print(f"{arch.text()}  ({space.count_flops(arch, data.input_shape, data.num_classes) / 1e6:.2f} M MAC)")
    for name in names:
        print(f"  {name:9s} {med(name, 0):6.2f} s wall {med(name, 1):6.2f} s CPU"
              + ("" if name == "one pass" else f"   {name}/one pass: {ratio(name, 0):4.2f}x wall, {ratio(name, 1):4.2f}x CPU"))
    together, alone = outputs["one pass"], outputs["separate"]
    dv = max(abs(a.val_acc - b.val_acc) for a, b in zip(together, alone, strict=True))
    dl = max(abs(a.train_loss - b.train_loss) for a, b in zip(together, alone, strict=True))
    print(f"  one pass vs separate, largest difference over the {k} seeds: val acc {dv:.4f}, train loss {dl:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mnist1d")
    parser.add_argument("--k", type=int, default=3, help="seeds per architecture")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sample", type=int, default=101, help="architectures in the seeded sample")
    parser.add_argument("--arch-seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2 repeats, the median architecture only")
    args = parser.parse_args()
    cfg = load_config(args.preset)
    data = load_dataset(cfg.data)
    space = cfg.search_space()
    ranked = sample_by_flops(space, data.input_shape, data.num_classes, args.sample, args.arch_seed)
    picks = {"median": ranked[len(ranked) // 2][1]}
    if not args.quick:
        picks = {"lower quartile": ranked[len(ranked) // 4][1], **picks,
                 "upper quartile": ranked[3 * len(ranked) // 4][1]}
    repeats = 2 if args.quick else args.repeats
    print(f"preset {cfg.name}, K = {args.k} seeds, {cfg.train.epochs} epochs, batch {cfg.train.batch_size}; "
          f"1 torch thread, median of {repeats} interleaved repeats; torch {torch.__version__}")
    print(f"sample: {args.sample} architectures drawn with seed {args.arch_seed}, ranked by multiply-accumulates")
    evaluate_seeds(picks["median"], data, cfg.train.model_copy(update={"epochs": 1}), RUNTIME, [0, 1], space=space)
    previous_trainer(picks["median"], data, cfg.train.model_copy(update={"epochs": 1}), space)  # one-off costs first
    for label, arch in picks.items():
        print(f"\n## {label} architecture")
        compare(arch, space, data, cfg.train, args.k, repeats)


if __name__ == "__main__":
    main()
