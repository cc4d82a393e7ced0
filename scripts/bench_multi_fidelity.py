"""Compare agents on a table with learning curves at an equal simulated budget (the table's
recorded CPU-seconds), the way multi-fidelity methods are meant to be compared: each run plays
episodes until its evaluator has charged ``--budget-seconds``, then hands back its incumbent.

The incumbent is the architecture with the best reward among the episodes evaluated at the
table's last epoch (a multi-fidelity agent's low rungs do not count: their scores are not
comparable); if a run reached no final epoch, the best at the highest epoch it reached. It is
scored by the table's mean validation and test accuracy over seeds at the last epoch, and by
regret against the table's best mean validation accuracy. A run whose last 200 episodes were
all repeats, charged nothing, has exhausted what it can find and stops below the budget.

Usage: ``python scripts/bench_multi_fidelity.py --config PRESET_OR_YAML --table FILE
[--agents random,sh,asha,hyperband,bohb] [--seeds 10] [--budget-seconds 60]``
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence

import gymnasium as gym

import nas_gym  # noqa: F401  (registers the env)
from nas_gym.agents.base import resolve_agent
from nas_gym.config import load_config
from nas_gym.evaluators.table import TableEvaluator
from nas_gym.runs.recorder import RecordEpisodes, SearchLog
from nas_gym.runs.runlog import Record

STALL = 200  # a run whose last this many episodes were all free repeats has exhausted the space: stop it


def incumbent(records: Sequence[Record]) -> Record:
    """The best record at the highest epochs reached (None, the evaluator's default, is the last)."""
    def depth(r: Record) -> float:
        return float("inf") if r.epochs is None else r.epochs

    top = max(depth(r) for r in records)
    return max((r for r in records if depth(r) == top and r.status == "ok"), key=lambda r: r.reward)


def run(config, table: str, agent: str, seed: int, budget: float) -> tuple[Record, int, float]:
    """(incumbent, episodes, seconds charged) of one run."""
    evaluator = TableEvaluator(config, path=table, run_seed=seed)
    log = SearchLog(None)
    env = RecordEpisodes(gym.make("NasGym/Cell-v0", config=config, evaluator=evaluator, seed=seed), log)
    instance = resolve_agent(agent)(env, seed=seed, hparams={})
    free = 0
    while evaluator.stats.train_seconds < budget and free < STALL:
        before = evaluator.stats.train_seconds
        instance.learn(1)
        free = free + 1 if evaluator.stats.train_seconds == before else 0
    return incumbent(log.records), log.episodes, evaluator.stats.train_seconds


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="the table's preset (name or YAML path)")
    p.add_argument("--table", required=True, help="a table file with learning curves")
    p.add_argument("--agents", default="random,sh,asha,hyperband,bohb")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget-seconds", type=float, default=60.0, help="simulated seconds per run")
    args = p.parse_args(argv)
    config = load_config(args.config)
    mean = TableEvaluator(config, seed="mean", path=args.table)
    best_arch, best_val = mean.optimum()
    full = [r.train_seconds for r in mean.all_results()]
    print(f"{config.name}: {len(full)} architectures, {mean.max_epochs} epochs, one full training "
          f"{statistics.mean(full):.2f} s on average; best mean val {best_val:.4f} ({best_arch.text()}); "
          f"budget {args.budget_seconds:g} s per run, seeds 0..{args.seeds - 1}, medians over seeds\n")
    print("| agent | episodes | val acc of incumbent | test acc | regret (val, points) | runs finding the best |")
    print("|---|---:|---:|---:|---:|---:|")
    for agent in args.agents.split(","):
        rows = [run(config, args.table, agent, s, args.budget_seconds) for s in range(args.seeds)]
        vals = [mean.evaluate(r.arch).val_acc for r, _, _ in rows]
        tests = [mean.test_acc(r.arch) or 0.0 for r, _, _ in rows]
        hits = sum(config.search_space().parse(r.arch).key() == best_arch.key() for r, _, _ in rows)
        print(f"| {agent} | {statistics.median(e for _, e, _ in rows):.0f} | {statistics.median(vals):.4f} | "
              f"{statistics.median(tests):.4f} | {100 * (best_val - statistics.median(vals)):.2f} | "
              f"{hits}/{len(rows)} |")


if __name__ == "__main__":
    main()
