"""Simulated workers measured: each agent on K simulated workers of a table, several seeds.

Prints, per agent and K, the mean over seeds of the simulated time the run's evaluations took
(when the last result arrived) and of the best validation accuracy (the drawn seed's) found.
Everything is read from each run's ``evaluations.csv``; wall time plays no part.

    python scripts/bench_simulated_workers.py --config mnist1d-cell --episodes 200 --seeds 5 --workers 1 4 16
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from nas_gym.config import load_config
from nas_gym.runs.runlog import read_records
from nas_gym.runs.search import run_search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--config", default="mnist1d-cell")
    parser.add_argument("--agents", nargs="+", default=["random", "evolution", "local"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    print(f"{args.config}, table evaluator, {args.episodes} evaluations, seeds 0-{args.seeds - 1}")
    print("| agent | K | simulated seconds (mean) | best val acc (mean) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for agent in args.agents:
            for k in args.workers:
                config = load_config(args.config, {"evaluator.kind": "table", "evaluator.cache": None,
                                                   "evaluator.simulated_workers": k})
                seconds, best = [], []
                for seed in range(args.seeds):
                    summary = run_search(config, agent, args.episodes, seed, Path(tmp) / f"{agent}-{k}",
                                         checkpoint_every=args.episodes)
                    records = read_records(summary.run_dir)
                    seconds.append(max(r.sim_finish for r in records))
                    best.append(max(r.val_acc for r in records if r.status == "ok"))
                print(f"| {agent} | {k} | {np.mean(seconds):.1f} | {np.mean(best):.4f} |", flush=True)


if __name__ == "__main__":
    main()
