"""Benchmark the surrogate evaluator: load time, query cost, and env episodes per second.

Measured, side by side in one process:

- loading: the first ``make_evaluator(config, "surrogate")`` (model file, checks);
- one query: ``evaluate`` of a new architecture (features, forest walk, noise draw, counts),
  and per architecture in batches of ``--batch`` (``evaluate_many``, one forest walk);
- the env (``gym.make("NasGym/LayerChain-v0", evaluator=...)``) driven by a uniform policy over
  the allowed actions, with the surrogate and, for the env's own floor, the synthetic evaluator;
- the vector env (``NasVecEnv``, ``--n-envs`` sub-envs, one batched query per step).

Every variant runs ``--repeats`` times, interleaved, and the median is reported: timings on a
shared machine vary run to run. Rates are given per wall second and per CPU second of this
process: on a machine where other work takes the cores, the second is what one idle core would do. Queries use new architectures (fresh evaluators), so the
evaluator's memo never answers for the forest.

Usage: ``python scripts/bench_surrogate.py [--config mnist1d] [--episodes 3000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import nas_gym  # noqa: F401  (registers the env)
from nas_gym.config import load_config
from nas_gym.evaluators import make_evaluator
from nas_gym.evaluators.surrogate import SurrogateEvaluator


class Clock:
    """Wall and CPU seconds since construction."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rates(self, count: float) -> tuple[float, float]:
        return count / (time.perf_counter() - self.wall), count / (time.process_time() - self.cpu)


def episodes_per_second(env: gym.Env, episodes: int, rng: np.random.Generator) -> tuple[float, float]:
    masks = env.unwrapped.action_masks
    env.reset(seed=0)
    clock = Clock()
    for _ in range(episodes):
        env.reset()
        done = False
        while not done:
            allowed = np.flatnonzero(masks())
            _, _, terminated, truncated, _ = env.step(int(allowed[rng.integers(len(allowed))]))
            done = terminated or truncated
    return clock.rates(episodes)


def vec_episodes_per_second(config_name: str, n_envs: int, episodes: int,
                            rng: np.random.Generator) -> tuple[float, float]:
    from nas_gym.agents.sb3_vec import NasVecEnv

    env = NasVecEnv(n_envs, config_name, evaluator="surrogate", seed=0)
    env.reset()
    done_episodes = 0
    clock = Clock()
    while done_episodes < episodes:
        masks = env.action_masks()
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        _, _, dones, _ = env.step(actions)
        done_episodes += int(dones.sum())
    rates = clock.rates(done_episodes)
    env.close()
    return rates


def query_microseconds(config, batch: int, n: int, rng: np.random.Generator) -> dict[str, tuple[float, float]]:
    """Microseconds per architecture (wall, CPU): one at a time, and in batches of ``batch``."""
    space = config.search_space()
    archs = [space.sample(rng) for _ in range(n)]
    single = SurrogateEvaluator(config)
    clock = Clock()
    for a in archs:
        single.evaluate(a)
    one = clock.rates(1e-6 * n)
    batched = SurrogateEvaluator(config, run_seed=1)
    clock = Clock()
    for i in range(0, n, batch):
        batched.evaluate_many(archs[i : i + batch])
    many = clock.rates(1e-6 * n)
    return {"query, one architecture (us)": (1 / one[0], 1 / one[1]),
            f"query, batches of {batch} (us per architecture)": (1 / many[0], 1 / many[1])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="mnist1d")
    p.add_argument("--episodes", type=int, default=3000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--n-envs", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    config = load_config(args.config)
    start = time.perf_counter()
    make_evaluator(config, kind="surrogate")
    print(f"first load (model file, checks): {time.perf_counter() - start:.3f} s")
    rng = np.random.default_rng(0)
    variants: dict[str, Callable[[], tuple[float, float]]] = {
        "env, surrogate (episodes/s)": lambda: episodes_per_second(
            gym.make("NasGym/LayerChain-v0", config=args.config, evaluator="surrogate"), args.episodes, rng),
        "env, synthetic (episodes/s)": lambda: episodes_per_second(
            gym.make("NasGym/LayerChain-v0", config=args.config, evaluator="synthetic"), args.episodes, rng),
        f"vector env x{args.n_envs}, surrogate (episodes/s)": lambda: vec_episodes_per_second(
            args.config, args.n_envs, args.episodes, rng),
    }
    results: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.repeats):
        for name, run in variants.items():
            results.setdefault(name, []).append(run())
        for name, value in query_microseconds(config, args.batch, 1000, rng).items():
            results.setdefault(name, []).append(value)
    print(f"{'':50s} {'wall':>8s} {'CPU':>8s}   (medians of {args.repeats}; wall runs)")
    for name, values in results.items():
        wall, cpu = (statistics.median(v[i] for v in values) for i in (0, 1))
        print(f"{name:50s} {wall:8.0f} {cpu:8.0f}   {', '.join(f'{v[0]:.0f}' for v in values)}")


if __name__ == "__main__":
    main()
