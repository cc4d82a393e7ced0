"""How far does ordinary training on this machine land from a shipped table, and how far apart are
the cells that matter? The two numbers the honesty tests' tolerance sits between.

* **Drift**: ``--rows`` rows drawn with ``--seed``, each retrained under every table seed by the
  ordinary single-seed trainer (``nas_gym.training.train.evaluate_architecture``, one CPU thread), as a
  user's ``nas-gym eval`` would; the absolute differences from the table's validation and test
  accuracies, in points. A table built by training several seeds in one pass, or on another CPU
  (another SIMD width changes float32 summation order), differs by this much without being wrong.
* **Spread of the top**: max - min and std of the mean validation accuracy over the top 1% of the
  table (by that mean): a tolerance as wide as this could not tell a top cell from another.

Usage: ``python scripts/bench_table_drift.py --config mnist1d-cell --rows 20 [--seed 0] [--top]``
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from nas_gym.config import RuntimeConfig, load_config
from nas_gym.data import load_dataset
from nas_gym.evaluators.table import TableEvaluator
from nas_gym.training.train import evaluate_architecture


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="mnist1d-cell")
    p.add_argument("--rows", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", action="store_true", help="draw the rows from the top 1%% only")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    table = TableEvaluator(cfg, seed="mean")
    header, rows = table.table.header, table.table.rows
    means = np.array([np.mean(r["val_acc"]) if all(s == "ok" for s in r["status"]) else np.nan for r in rows])
    top = np.sort(means[~np.isnan(means)])[::-1][: max(2, int(round(0.01 * np.sum(~np.isnan(means)))))]
    print(f"{args.config}: {len(rows)} rows; top 1% ({len(top)} rows) mean val acc {100 * top.min():.2f}-"
          f"{100 * top.max():.2f}%: spread {100 * (top.max() - top.min()):.2f} points, std {100 * top.std(ddof=1):.2f}")
    data = load_dataset(cfg.data)
    space = cfg.search_space()
    pool = np.flatnonzero(means >= top.min()) if args.top else np.arange(len(rows))
    picks = np.random.default_rng(args.seed).choice(pool, size=min(args.rows, len(pool)), replace=False)
    dv, dt, worst, start = [], [], [], time.perf_counter()
    for i in picks:
        row = rows[i]
        for k, s in enumerate(header["seeds"]):
            seeded = load_config(cfg, {"train.seed": s})
            r = evaluate_architecture(space.parse(row["arch"]), data, seeded.train, RuntimeConfig(device="cpu", threads=1),
                                      want_test=True, space=space)
            dv.append(abs(r.val_acc - row["val_acc"][k]))
            worst.append((dv[-1], row["arch"], s, row["val_acc"][k], r.val_acc, row["train_loss"][k], r.train_loss))
            dt.append(abs(r.test_acc - row["test_acc"][k]))
    dv_a, dt_a = 100 * np.array(dv), 100 * np.array(dt)
    n_seeds = len(header["seeds"])
    signed = 100 * np.array([w[4] - w[3] for w in worst]).reshape(-1, n_seeds)  # retrained - table, per row and seed
    row_mean = np.abs(signed.mean(axis=1))
    print(f"drift over {len(picks)} rows{' of the top 1%' if args.top else ''} x {len(header['seeds'])} seeds (draw seed {args.seed}), single-seed trainer, "
          f"{platform.processor() or platform.machine()}: val |diff| max {dv_a.max():.2f} mean {dv_a.mean():.3f} points "
          f"({np.sum(dv_a > 0)} of {len(dv_a)} nonzero); test |diff| max {dt_a.max():.2f} mean {dt_a.mean():.3f}; "
          f"{time.perf_counter() - start:.0f} s")
    print(f"  per row, |mean over seeds of (retrained - table)|: max {row_mean.max():.2f} mean {row_mean.mean():.3f} points")
    for _diff, arch, s, table_acc, acc, table_loss, loss in sorted(worst, reverse=True)[:3]:
        print(f"  largest: {arch} seed {s}: table val {table_acc:.4f} (loss {table_loss:.4f}), "
              f"retrained {acc:.4f} (loss {loss:.4f})")


if __name__ == "__main__":
    main()
