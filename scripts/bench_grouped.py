"""Benchmark K different cells (each with its seeds) trained in one pass against today's table path.

Today's path is what ``scripts/build_table.py`` does: per cell, its seeds stacked in one pass
(``nas_gym.training.train.evaluate_seeds``). The grouped path trains K cells x their seeds in one pass
(``nas_gym.training.members.evaluate_members``). Both ask for test accuracy, as the table does. The cells
are drawn with a fixed seed from the preset's distinct cells (one per canonical key, as the table
stores them), uniformly or as a run of neighbours in sorted order; every way trains the same
cells. Ways are interleaved within a
repeat and rotated between repeats; rates are medians over repeats, ratios medians of per-repeat
ratios (a busy spell on the shared CPU then hits all ways alike). One torch thread. Also prints
the largest difference between a member's result in a grouped pass and in today's path.

Usage: ``python scripts/bench_grouped.py [--preset mnist1d-cell] [--cells 16] [--k 4 8 16]
[--seeds 0 1] [--repeats 3] [--draw uniform|neighbours] [--curves] [--ceiling K] [--keep-freed-memory]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from nas_gym.config import RuntimeConfig, load_config
from nas_gym.data import load_dataset
from nas_gym.evaluators.base import EvalResult
from nas_gym.execution.allocator import keep_freed_memory
from nas_gym.spaces.cell.space import canonical
from nas_gym.training.members import evaluate_members
from nas_gym.training.train import evaluate_seeds

RUNTIME = RuntimeConfig(device="cpu", threads=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mnist1d-cell")
    parser.add_argument("--cells", type=int, default=16, help="cells per repeat (a multiple of every K)")
    parser.add_argument("--k", type=int, nargs="+", default=[4, 8, 16], help="cells per grouped pass")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cell-seed", type=int, default=0, help="seed of the draw of cells")
    parser.add_argument("--draw", choices=["uniform", "neighbours"], default="uniform",
                        help="cells drawn uniformly, or consecutive in the sorted list of distinct cells "
                             "(cells that share their first edges' ops: how a builder could batch them)")
    parser.add_argument("--curves", action="store_true", help="grouped passes also record per-epoch curves")
    parser.add_argument("--ceiling", type=int, default=0, metavar="K",
                        help="also time every cell with K x seeds seeds in one pass (plain stacking of one cell, "
                             "rated per member trained): the bound grouping K different cells can approach")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="raise glibc's mmap and trim thresholds first (nas_gym.execution.allocator), for every way alike")
    args = parser.parse_args()
    if any(args.cells % k for k in args.k):
        parser.error(f"--cells {args.cells} must be a multiple of every --k {args.k}")
    torch.set_num_threads(1)
    allocator = keep_freed_memory() if args.keep_freed_memory else False
    cfg = load_config(args.preset)
    data = load_dataset(cfg.data)
    space = cfg.search_space(data.input_shape)
    distinct = space.distinct()
    rng = np.random.default_rng(args.cell_seed)
    if args.draw == "uniform":
        cells = [distinct[int(i)] for i in rng.choice(len(distinct), size=args.cells, replace=False)]
    else:
        first = int(rng.integers(len(distinct) - args.cells))
        cells = distinct[first : first + args.cells]
    assert all(canonical(c) == c for c in cells)
    seeds = list(args.seeds)

    def today() -> list[list[EvalResult]]:
        return [evaluate_seeds(c, data, cfg.train, RUNTIME, seeds, want_test=True, space=space) for c in cells]

    def grouped(k: int) -> Callable[[], list[list[EvalResult]]]:
        def run() -> list[list[EvalResult]]:
            out = []
            for i in range(0, len(cells), k):
                items = [(c, seeds) for c in cells[i : i + k]]
                out += [[m.result for m in row] for row in evaluate_members(
                    items, data, cfg.train, RUNTIME, space=space, want_test=True, epoch_metrics=args.curves)]
            return out
        return run

    def ceiling() -> list[list[EvalResult]]:
        many = list(range(args.ceiling * len(seeds)))
        return [evaluate_seeds(c, data, cfg.train, RUNTIME, many, want_test=True, space=space) for c in cells]

    ways: dict[str, Callable[[], list[list[EvalResult]]]] = {"today (per cell)": today}
    ways.update({f"grouped K={k}": grouped(k) for k in args.k})
    if args.ceiling:
        ways[f"one cell x{args.ceiling * len(seeds)}"] = ceiling
    names = list(ways)
    warm = cfg.train.model_copy(update={"epochs": 1})  # one-off costs (lazy set-up) before any clock
    evaluate_seeds(cells[0], data, warm, RUNTIME, seeds, space=space)
    evaluate_members([(c, seeds) for c in cells[:2]], data, warm, RUNTIME, space=space)
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    results: dict[str, list[list[EvalResult]]] = {}
    for r in range(args.repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = time.perf_counter(), time.process_time()
            results[name] = ways[name]()
            times[name].append((time.process_time() - cpu, time.perf_counter() - wall))

    trained = {n: len(cells) * len(seeds) * (args.ceiling if n.startswith("one cell") else 1) for n in names}
    print(f"preset {cfg.name}: {cfg.train.epochs} epochs, batch {cfg.train.batch_size}, "
          f"{len(data.y_train)} training samples; {len(cells)} cells drawn ({args.draw}) from {len(distinct)} "
          f"distinct (seed {args.cell_seed}) x seeds {seeds}; test accuracy asked for; curves {'on' if args.curves else 'off'}")
    print(f"1 torch thread, {args.repeats} interleaved repeats, medians; torch {torch.__version__}; "
          f"freed memory kept (allocator): {allocator}")
    print(f"{'way':18s} {'cell-seeds/CPU-s':>17s} {'cell-seeds/wall-s':>18s} {'CPU ratio':>10s} {'wall ratio':>11s}")
    base = times[names[0]]
    for name in names:
        n = trained[name] / trained[names[0]]  # members per member of today's way
        cpu_rate = statistics.median(trained[name] / t[0] for t in times[name])
        wall_rate = statistics.median(trained[name] / t[1] for t in times[name])
        cpu_ratio = statistics.median(n * b[0] / t[0] for b, t in zip(base, times[name], strict=True))
        wall_ratio = statistics.median(n * b[1] / t[1] for b, t in zip(base, times[name], strict=True))
        print(f"{name:18s} {cpu_rate:17.2f} {wall_rate:18.2f} {cpu_ratio:9.2f}x {wall_ratio:10.2f}x")
    ref = results[names[0]]
    for name in [n for n in names[1:] if n.startswith("grouped")]:
        pairs = [(a, b) for ra, rb in zip(ref, results[name], strict=True) for a, b in zip(ra, rb, strict=True)]
        dv = max(abs(a.val_acc - b.val_acc) for a, b in pairs)
        dt = max(abs(a.test_acc - b.test_acc) for a, b in pairs if a.ok and b.ok)
        dl = max((abs(a.train_loss - b.train_loss) for a, b in pairs if a.ok and b.ok), default=0.0)
        print(f"{name} vs today, largest difference over {len(pairs)} members: val acc {dv:.4f}, "
              f"test acc {dt:.4f}, train loss {dl:.4f}; statuses equal: {all(a.status == b.status for a, b in pairs)}")


if __name__ == "__main__":
    main()
