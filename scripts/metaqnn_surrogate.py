"""MetaQNN at its own scale on the surrogate: thousands of evaluations per run, many seeds.

Usage::

    python scripts/metaqnn_surrogate.py --config mnist1d --seeds 20 --budget 3000 \\
        --agents random,qlearning,evolution,reinforce,ppo --retrain 5 --out docs/metaqnn_surrogate.json

Every agent runs ``--budget`` episodes per seed through ``nas-gym search``'s own code path
(``run_search``) with ``evaluator: surrogate``: rewards are single-seed accuracies drawn from the
surrogate (noise seeded by the run's seed), and the clock is the predicted training time.
Q-learning follows MetaQNN's unscaled schedule (1,500 models at epsilon 1, then 100-150 per
stage down to 0.1, counting distinct architectures as MetaQNN did), and stays at 0.1 past it.

Reported per agent: the best reward seen (what the search believes), the surrogate's noise-free
mean accuracy of that pick (what it is worth), unique architectures and simulated training
hours; for Q-learning, the mean sampled accuracy per epsilon stage, beside random search's mean
sampled accuracy (MetaQNN's figure). ``--retrain K`` then trains the K best distinct picks of
each agent for real (the preset's trainer, seeds 0 and 1) to check that the surrogate's picks hold up.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.agents.q_learning import METAQNN_SCHEDULE
from nas_gym.config import load_config
from nas_gym.evaluators.surrogate import SurrogateEvaluator
from nas_gym.runs.runlog import read_records
from nas_gym.runs.search import run_search


def run_agent(config, agent: str, budget: int, seeds: int, logdir: Path) -> list[dict[str, Any]]:
    hparams = {"epsilon_schedule": [list(s) for s in METAQNN_SCHEDULE]} if agent == "qlearning" else None
    runs = []
    for seed in range(seeds):
        start = time.perf_counter()
        summary = run_search(config, agent, budget, seed, logdir / agent, hparams=hparams, checkpoint_every=500,
                             argv=["metaqnn_surrogate.py"])
        records = read_records(summary.run_dir)
        runs.append({"seed": seed, "val_acc": [r.val_acc for r in records], "archs": [r.arch for r in records],
                     "train_hours": summary.stats.train_seconds / 3600, "wall_s": time.perf_counter() - start})
        print(f"  {agent} seed {seed}: {len(records)} episodes in {runs[-1]['wall_s']:.1f}s", flush=True)
    return runs


def stage_means(runs: list[dict[str, Any]], stages: list[tuple[float, int]]) -> list[dict[str, Any]]:
    """Mean sampled accuracy per epsilon stage over all runs. The agent advances its schedule
    by distinct architectures (MetaQNN's models), so an episode's stage is found from how many
    distinct architectures came before it (exact with one proposal at a time, as here)."""
    sums: dict[int, list[float]] = {}
    for run in runs:
        seen: set[str] = set()
        for arch, acc in zip(run["archs"], run["val_acc"], strict=True):
            position, end, stage = len(seen), 0, len(stages) - 1
            for i, (_, n) in enumerate(stages):
                end += n
                if position < end:
                    stage = i
                    break
            sums.setdefault(stage, []).append(acc)
            seen.add(arch)
    return [{"epsilon": stages[i][0], "models": stages[i][1], "episodes": len(v),
             "mean_val_acc": round(float(np.mean(v)), 4)} for i, v in sorted(sums.items())]


def summarise(config, runs: list[dict[str, Any]]) -> dict[str, Any]:
    scorer = SurrogateEvaluator(config, mean=True)
    picks = [run["archs"][int(np.argmax(run["val_acc"]))] for run in runs]
    worth = [r.val_acc for r in scorer.evaluate_many(picks)]
    best = [max(run["val_acc"]) for run in runs]
    return {"runs": len(runs), "best_reward_mean": round(float(np.mean(best)), 4),
            "best_reward_std": round(float(np.std(best)), 4),
            "pick_surrogate_mean": round(float(np.mean(worth)), 4), "pick_surrogate_std": round(float(np.std(worth)), 4),
            "unique_archs": round(float(np.mean([len(set(run["archs"])) for run in runs])), 1),
            "train_hours": round(float(np.mean([run["train_hours"] for run in runs])), 2),
            "wall_s_per_run": round(float(np.mean([run["wall_s"] for run in runs])), 1),
            "picks": sorted(set(zip(worth, picks, strict=True)), reverse=True)}


def retrain(config, picks: list[tuple[float, str]], k: int, seeds: tuple[int, ...] = (0, 1)) -> list[dict[str, Any]]:
    """The ``k`` best distinct picks trained for real with the preset's trainer, under each of
    ``seeds`` (their mean is a less noisy check than one training)."""
    from nas_gym.evaluators.training import TrainingEvaluator
    from nas_gym.storage.cache import MemoryCache

    chosen = picks[:k]
    real: list[list[float]] = []
    for seed in seeds:
        trainer = TrainingEvaluator(load_config(config, {"evaluator.kind": "train", "runtime.threads": 1,
                                                         "train.seed": seed}), cache=MemoryCache())
        real.append([r.val_acc for r in trainer.evaluate_many([trainer.space.parse(a) for _, a in chosen])])
    return [{"arch": a, "surrogate_mean": round(w, 4), "real_val_acc": [round(r[i], 4) for r in real],
             "real_mean": round(float(np.mean([r[i] for r in real])), 4)} for i, (w, a) in enumerate(chosen)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="mnist1d")
    p.add_argument("--agents", default="random,qlearning,evolution,reinforce,ppo")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--budget", type=int, default=3000)
    p.add_argument("--retrain", type=int, default=5, help="best distinct picks per agent trained for real (0: none)")
    p.add_argument("--logdir", default=None, help="run folders; default a temporary folder")
    p.add_argument("--out", default=None, help="JSON results file")
    args = p.parse_args()
    config = load_config(args.config, {"evaluator.kind": "surrogate", "evaluator.cache": None})
    logdir = Path(args.logdir or tempfile.mkdtemp(prefix="metaqnn-surrogate-"))
    results: dict[str, Any] = {"config": args.config, "budget": args.budget, "seeds": args.seeds, "agents": {}}
    all_runs = {}
    for agent in args.agents.split(","):
        all_runs[agent] = run_agent(config, agent, args.budget, args.seeds, logdir)
        results["agents"][agent] = summarise(config, all_runs[agent])
    if "qlearning" in all_runs:
        results["qlearning_by_epsilon"] = stage_means(all_runs["qlearning"], list(METAQNN_SCHEDULE))
    if "random" in all_runs:
        results["random_mean_val_acc"] = round(float(np.mean([v for r in all_runs["random"] for v in r["val_acc"]])), 4)
    if args.retrain:
        for summary in results["agents"].values():
            summary["retrained"] = retrain(config, summary["picks"], args.retrain)
    for summary in results["agents"].values():
        summary["picks"] = summary["picks"][:10]
    text = json.dumps(results, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
