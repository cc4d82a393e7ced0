"""Pilot for the cell benchmark's budget: which training setting makes seeds agree on cell rankings?

Usage::

    python scripts/pilot_cell_budget.py run --settings paper-cosine big-cosine [--workers 2]
    python scripts/pilot_cell_budget.py report [--out docs/pilot_cell_budget.md]

``run`` trains 200 cells drawn uniformly from the distinct cells of ``mnist1d-cell`` plus the 50 best
of its shipped table, 3 seeds each, under each named setting, and records every member's learning
curve (validation and test accuracy, training loss and CPU-seconds after every epoch). Results go
to ``builds/pilot/<setting>.jsonl`` one (cell, seed) per line as they arrive
(``nas_gym.benchmarks.curves``), so a killed run started again trains only what is missing. ``report`` reads those files and writes, per setting
and epoch: seed-to-seed Kendall tau over the uniform cells and over the top 10% alone, the rank
correlation of each epoch with the last, the spread of accuracy within and between cells, and
CPU-seconds per cell and seed.

Why these settings: the shipped table (2 epochs on half the split) has seed-to-seed tau 0.19. The
suspects are too little training, too small a validation set (800 samples: a standard error of
1.6 points at 70%, comparable to the gaps between good cells) and a task so easy at longer
budgets that good cells crowd at the ceiling. A constant learning rate (no warm-up) makes epoch
``e`` of a run exactly a run of ``e`` epochs, so one run gives every budget up to its last.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nas_gym.config import Config, load_config, parse_overrides

PRESET = "mnist1d-cell"
SEEDS = (0, 1, 2)
OUT_DIR = Path("builds/pilot")
_CONST = {"train.schedule": "constant", "train.warmup_fraction": 0.0}
# Each setting: overrides on the preset. "big" data: 20,000 generated signals (seed 1, not the
# paper's 42): 12,800 train / 3,200 validation / 4,000 test, so validation noise is halved.
SETTINGS: dict[str, dict[str, object]] = {
    "paper-const": {"data.train_fraction": 1.0, **_CONST, "train.epochs": 12},
    "paper-cosine": {"data.train_fraction": 1.0, "train.schedule": "cosine", "train.epochs": 12},
    "big-cosine": {"data.samples": 20_000, "data.generation_seed": 1, "data.train_fraction": 1.0,
                   "train.schedule": "cosine", "train.epochs": 3},
    "big-noisy-cosine": {"data.samples": 20_000, "data.generation_seed": 1, "data.noise": 2.0,
                         "data.train_fraction": 1.0, "train.schedule": "cosine", "train.epochs": 3},
}


def setting_config(name: str) -> Config:
    overrides = {k: str(v) for k, v in SETTINGS[name].items()}
    return load_config(PRESET, parse_overrides([f"{k}={v}" for k, v in overrides.items()]))


def pilot_cells(n_uniform: int = 200, n_top: int = 50, seed: int = 0) -> list[tuple[str, str]]:
    """``(cell text, 'uniform' | 'top')``: uniform draws from the distinct cells, then the best of
    the shipped table by mean validation accuracy that were not drawn."""
    from nas_gym.evaluators.table import TableEvaluator

    config = load_config(PRESET)
    distinct = config.search_space().distinct()
    rng = np.random.default_rng(seed)
    uniform = [distinct[i].text() for i in rng.choice(len(distinct), size=n_uniform, replace=False)]
    table = TableEvaluator(config, seed="mean")
    ranked = sorted(table.all_results(), key=lambda r: -r.val_acc)
    top = [r.arch for r in ranked if r.arch not in set(uniform)][:n_top]
    return [(c, "uniform") for c in uniform] + [(c, "top") for c in top]


def run(names: Sequence[str], workers: int, group: int) -> None:
    from nas_gym.benchmarks import curves

    cells = [c for c, _ in pilot_cells()]
    for name in names:
        path = OUT_DIR / f"{name}.jsonl"
        start = time.perf_counter()
        print(f"{name}: {len(curves.read_lines(path))} of {len(cells) * len(SEEDS)} members recorded", flush=True)

        def progress(i: int, n: int, name: str = name, start: float = start) -> None:
            print(f"  {name}: pass {i}/{n}, {time.perf_counter() - start:.0f}s", flush=True)

        curves.build(setting_config(name), cells, SEEDS, path, workers=workers, group=group, on_pass=progress)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train the pilot cells under the named settings (resumable)")
    r.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--group", type=int, default=8, help="cells per grouped training pass")
    rep = sub.add_parser("report", help="summarise builds/pilot/*.jsonl into a page")
    rep.add_argument("--out", default="docs/pilot_cell_budget.md")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.command == "run":
        run(args.settings, args.workers, args.group)
    else:
        from pilot_report import write_report  # noqa: PLC0415 (a sibling script)

        write_report(OUT_DIR, Path(args.out), pilot_cells(), SETTINGS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
