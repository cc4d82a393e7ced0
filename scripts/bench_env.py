"""Benchmark the env and the driver around it with the table evaluator, in episodes per second.

With a table, nothing is trained, so the env, the search space rules, the lookup, the agent's
proposals and the recording are the whole cost; agents that learn from many thousands of
episodes (tabular Q-learning, PPO) and table studies (thousands of evaluations x seeds x agents)
live or die by these numbers. One table, side by side:

- the env as ``gym.make`` returns it (gymnasium's order-enforcing and passive-checker wrappers)
  and the bare env, driven by a uniform policy over the allowed actions (``action_masks()``);
- the policy alone (masks and random draws without stepping), to show what the env costs;
- the whole ``nas-gym search`` command with random search and with evolution (run folder,
  checkpoints, CSV, TensorBoard, figures, progress bar), in process, imports already paid; and
  random search again with a single checkpoint at the end, to show what checkpoints cost;
- ``nas-gym compare`` of random search and evolution, counted per agent run.

For the commands, "fixed s" is the cost of a run of one episode (run folder, table load, final
figures) and "marginal us" the cost of each further episode, from the two run lengths; episodes/s
is over the whole call. Each variant runs ``--repeats`` times, interleaved, and the median is
reported (another process can take a core at any moment).

Usage: ``python scripts/bench_env.py [--config mnist1d-tiny] [--episodes 5000] [--search-episodes 3000]
[--compare-budget 1000] [--repeats 3] [--epochs E] [--profile {env,random,evolution}]``
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import nas_gym  # noqa: F401  (registers the env)
from nas_gym.cli import app
from nas_gym.config import load_config
from nas_gym.envs.nas_env import NasEnv
from nas_gym.evaluators.table import TableEvaluator

COMPARE_SEEDS = 2
COMPARE_AGENTS = "random,evolution"


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


def policy_only(env: NasEnv, episodes: int, steps_per_episode: float, rng: np.random.Generator) -> int:
    """The policy's share: the same masks and draws, without stepping (the prefix stays empty)."""
    n = int(episodes * steps_per_episode)
    for _ in range(n):
        allowed = np.flatnonzero(env.action_masks())
        int(allowed[rng.integers(len(allowed))])
    return n


def cli(args: list[str]) -> float:
    """Seconds of one in-process ``nas-gym`` command writing into a fresh temporary folder (its
    output discarded)."""
    with tempfile.TemporaryDirectory() as logdir:
        sink = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            app([*args, "--logdir", logdir], standalone_mode=False)
        return time.perf_counter() - start


def _fidelity(epochs: int | None) -> list[str]:
    return [] if epochs is None else ["--set", f"evaluator.epochs={epochs}"]


def search_args(config: str, agent: str, episodes: int, epochs: int | None = None) -> list[str]:
    return ["search", "--agent", agent, "--config", config, "--evaluator", "table", "--episodes", str(episodes),
            *_fidelity(epochs)]


def compare_args(config: str, budget: int, epochs: int | None = None) -> list[str]:
    return ["compare", "--agents", COMPARE_AGENTS, "--config", config, "--evaluator", "table", "--budget", str(budget),
            "--seeds", str(COMPARE_SEEDS), *_fidelity(epochs)]


def _timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    steps = fn()
    return time.perf_counter() - start, steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="mnist1d-tiny")
    p.add_argument("--episodes", type=int, default=5000, help="episodes per env run")
    p.add_argument("--search-episodes", type=int, default=3000, help="episodes per nas-gym search run")
    p.add_argument("--compare-budget", type=int, default=1000, help="evaluations per agent run of nas-gym compare")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=None,
                   help="answer at this epoch of a learning-curve table (evaluator.epochs); default: the last")
    p.add_argument("--profile", choices=("env", "random", "evolution"),
                   help="cProfile one run of the bare env or of a search; print the top functions")
    args = p.parse_args()

    cfg = load_config(args.config)
    start = time.perf_counter()
    evaluator = TableEvaluator(cfg, epochs=args.epochs)
    load_seconds = time.perf_counter() - start
    wrapped = gym.make("NasGym/LayerChain-v0", config=cfg, evaluator=evaluator)
    bare = NasEnv(cfg, evaluator=evaluator)
    run_episodes(bare, 200, np.random.default_rng(0))  # warm-up: caches, first-call costs
    cli(search_args(args.config, "evolution", 20))  # imports and first-call costs of the commands

    env_variants: dict[str, Callable[[int], tuple[float, int]]] = {
        "gym.make(...) env": lambda r: _timed(lambda: run_episodes(wrapped, args.episodes, np.random.default_rng(r))),
        "bare NasEnv": lambda r: _timed(lambda: run_episodes(bare, args.episodes, np.random.default_rng(r))),
    }
    # name -> (episodes per run, args of a full run, args of a one-episode run)
    runs = args.compare_budget * COMPARE_SEEDS * len(COMPARE_AGENTS.split(","))
    commands = {f"nas-gym search --agent {a}": (args.search_episodes,
                                                 search_args(args.config, a, args.search_episodes, args.epochs),
                                                 search_args(args.config, a, 1, args.epochs)) for a in ("random", "evolution")}
    episodes, whole, single = commands["nas-gym search --agent random"]
    once = ["--checkpoint-every", str(args.search_episodes)]  # one checkpoint, at the end: what checkpoints cost
    commands["nas-gym search --agent random, checkpoint at the end only"] = (episodes, whole + once, single + once)
    commands["nas-gym compare, per agent run"] = (args.compare_budget, compare_args(args.config, args.compare_budget, args.epochs),
                                                  compare_args(args.config, 1, args.epochs))
    env_times: dict[str, list[tuple[float, int]]] = {k: [] for k in env_variants}
    full: dict[str, list[float]] = {k: [] for k in commands}
    one: dict[str, list[float]] = {k: [] for k in commands}
    for r in range(args.repeats):
        for name, fn in env_variants.items():
            env_times[name].append(fn(r))
        for name, (_, whole, single) in commands.items():
            full[name].append(cli(whole))
            one[name].append(cli(single))
    steps_per_episode = statistics.mean(s for _, s in env_times["bare NasEnv"]) / args.episodes
    policy = [_timed(lambda r=r: policy_only(bare, args.episodes, steps_per_episode, np.random.default_rng(r)))
              for r in range(args.repeats)]

    print(f"{cfg.name}: {evaluator.table.header['space_size']} architectures, table loaded in {load_seconds * 1e3:.0f} ms; "
          f"{args.repeats} repeats, medians; {steps_per_episode:.2f} steps/episode; compare: {COMPARE_AGENTS} x "
          f"{COMPARE_SEEDS} seeds ({runs // args.compare_budget} agent runs)\n")
    print("| variant | episodes per run | s per run | episodes/s | marginal us/episode | fixed s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, times in env_times.items():
        seconds = statistics.median(t for t, _ in times)
        print(f"| {name} | {args.episodes} | {seconds:.2f} | {args.episodes / seconds:,.0f} | "
              f"{1e6 * seconds / args.episodes:.0f} | - |")
    seconds = statistics.median(t for t, _ in policy)
    print(f"| policy alone (masks + draws) | {args.episodes} | {seconds:.2f} | - | {1e6 * seconds / args.episodes:.0f} | - |")
    for name, (episodes, _, _) in commands.items():
        per_run = len(COMPARE_AGENTS.split(",")) * COMPARE_SEEDS if "compare" in name else 1
        whole, fixed = statistics.median(full[name]) / per_run, statistics.median(one[name]) / per_run
        marginal = (whole - fixed) / (episodes - 1)
        print(f"| {name} | {episodes} | {whole:.2f} | {episodes / whole:,.0f} | {1e6 * marginal:.0f} | {fixed:.2f} |")

    if args.profile:
        prof = cProfile.Profile()
        if args.profile == "env":
            prof.runcall(run_episodes, bare, args.episodes, np.random.default_rng(0))
        else:
            prof.runcall(cli, search_args(args.config, args.profile, args.search_episodes))
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
