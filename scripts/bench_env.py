"""Benchmark the env with the table evaluator: random-policy episodes and env steps per second.

With a table, nothing is trained, so the env, the search space rules and the lookup are the
whole cost; agents that learn from many thousands of episodes (tabular Q-learning, PPO) live
or die by this number. The policy is uniform over the allowed actions (``action_masks()``),
so every episode ends in a valid architecture and is scored.

Each variant runs ``--repeats`` times, interleaved, and the median is reported (another
process can take a core at any moment). Variants: the env as ``gym.make`` returns it (with
gymnasium's order-enforcing and passive-checker wrappers), the bare env, and the policy alone
(masks and random draws without stepping), to show what the env itself costs.

Usage: ``python scripts/bench_env.py [--config mnist1d-tiny] [--episodes 5000] [--repeats 5] [--profile]``
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import nas_gym  # noqa: F401  (registers the env)
from nas_gym.config import load_config
from nas_gym.envs.layer_chain import LayerChainEnv
from nas_gym.evaluators.table import TableEvaluator


def run_episodes(env: gym.Env, episodes: int, rng: np.random.Generator) -> int:
    """Play ``episodes`` random masked episodes; returns the number of steps taken."""
    masks = env.unwrapped.action_masks
    steps = 0
    env.reset(seed=0)
    for _ in range(episodes):
        env.reset()
        done = False
        while not done:
            allowed = np.flatnonzero(masks())
            _, _, terminated, truncated, _ = env.step(int(allowed[rng.integers(len(allowed))]))
            done = terminated or truncated
            steps += 1
    return steps


def policy_only(env: LayerChainEnv, episodes: int, steps_per_episode: float, rng: np.random.Generator) -> int:
    """The policy's share: the same masks and draws, without stepping (the prefix stays empty)."""
    n = int(episodes * steps_per_episode)
    for _ in range(n):
        allowed = np.flatnonzero(env.action_masks())
        int(allowed[rng.integers(len(allowed))])
    return n


def _timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    steps = fn()
    return time.perf_counter() - start, steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="mnist1d-tiny")
    p.add_argument("--episodes", type=int, default=5000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--profile", action="store_true", help="cProfile one run of the bare env; print the top functions")
    args = p.parse_args()

    cfg = load_config(args.config)
    start = time.perf_counter()
    evaluator = TableEvaluator(cfg)
    load_seconds = time.perf_counter() - start
    wrapped = gym.make("NasGym/LayerChain-v0", config=cfg, evaluator=evaluator)
    bare = LayerChainEnv(cfg, evaluator=evaluator)
    run_episodes(bare, 200, np.random.default_rng(0))  # warm-up: caches, first-call costs

    variants: dict[str, Callable[[int], tuple[float, int]]] = {
        "gym.make(...) env": lambda r: _timed(lambda: run_episodes(wrapped, args.episodes, np.random.default_rng(r))),
        "bare LayerChainEnv": lambda r: _timed(lambda: run_episodes(bare, args.episodes, np.random.default_rng(r))),
    }
    timings: dict[str, list[tuple[float, int]]] = {k: [] for k in variants}
    for r in range(args.repeats):
        for name, fn in variants.items():
            timings[name].append(fn(r))
    steps_per_episode = statistics.mean(s for _, s in timings["bare LayerChainEnv"]) / args.episodes
    timings["policy alone (masks + draws)"] = [
        _timed(lambda r=r: policy_only(bare, args.episodes, steps_per_episode, np.random.default_rng(r)))
        for r in range(args.repeats)
    ]

    print(f"{cfg.name}: {evaluator.table.header['space_size']} architectures, table loaded in {load_seconds * 1e3:.0f} ms; "
          f"{args.episodes} episodes x {args.repeats} repeats, {steps_per_episode:.2f} steps/episode; medians\n")
    print("| variant | episodes/s | steps/s | us/step |")
    print("|---|---:|---:|---:|")
    for name, runs in timings.items():
        seconds = statistics.median(t for t, _ in runs)
        steps = statistics.median(s for _, s in runs)
        eps = f"{args.episodes / seconds:,.0f}" if "policy" not in name else "-"
        print(f"| {name} | {eps} | {steps / seconds:,.0f} | {1e6 * seconds / steps:.1f} |")
    print(f"\nevaluator stats after all runs: {evaluator.stats}")

    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(run_episodes, bare, args.episodes, np.random.default_rng(0))
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
