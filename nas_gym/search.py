"""Running a search: one agent, one preset, one seed, one run folder.

The run folder holds everything needed to understand and repeat the run: the resolved config,
the command line, TensorBoard events, and a CSV of every evaluated architecture.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

from agents.base import AgentError, resolve_agent
from nas_gym.config import Config
from nas_gym.evaluators.base import EvalStats
from nas_gym.evaluators.prefetch import PrefetchEvaluator
from nas_gym.tb import Record, RecordEpisodes, SearchLog

ENV_ID = "NasGym/LayerChain-v0"


@dataclass(frozen=True)
class SearchSummary:
    run_dir: Path
    episodes: int
    top: list[Record]
    failures: list[Record]
    stats: EvalStats
    seconds: float


def make_run_dir(logdir: Path, agent: str, preset: str, seed: int) -> Path:
    """A fresh folder under ``logdir``; fails early, with a clear message, if it can't be written."""
    safe_agent = "".join(c if c.isalnum() or c in "-_" else "_" for c in agent.rsplit(":", 1)[-1])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = logdir / f"{safe_agent}-{preset}-s{seed}-{stamp}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = logdir / f"{safe_agent}-{preset}-s{seed}-{stamp}-{n}"
    try:
        run_dir.mkdir(parents=True)
    except OSError as e:
        raise OSError(f"logdir {logdir}: cannot create a run folder ({e.strerror}); choose a writable --logdir") from None
    return run_dir


def write_run_files(run_dir: Path, config: Config, argv: list[str] | None = None) -> None:
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    argv = sys.argv if argv is None else argv
    (run_dir / "command.txt").write_text(shlex.join(argv) + "\n")


def run_search(
    config: Config,
    agent: str,
    episodes: int,
    seed: int,
    logdir: Path,
    *,
    evaluator: Any = None,
    hparams: dict[str, Any] | None = None,
    on_episode: Callable[[SearchLog], None] | None = None,
    argv: list[str] | None = None,
) -> SearchSummary:
    """Run ``agent`` for ``episodes`` episodes on the env made from ``config``.

    :param evaluator: an Evaluator, an evaluator kind, or None for the config's own.
    :raises AgentError, ConfigError, OSError: bad input, before anything is trained.
    """
    if episodes < 1:
        raise AgentError(f"episodes must be >= 1, got {episodes}")
    agent_cls = resolve_agent(agent)
    run_dir = make_run_dir(logdir, agent, config.name, seed)
    write_run_files(run_dir, config, argv)
    workers = config.evaluator.workers
    run_hparams = {"agent": agent, "preset": config.name, "seed": seed, "episodes": episodes,
                   "evaluator": evaluator if isinstance(evaluator, str) else config.evaluator.kind,
                   "epochs": config.train.epochs, "max_depth": config.space.max_depth, "reward": config.reward.kind,
                   **{f"agent.{k}": v for k, v in (hparams or {}).items()}}
    log = SearchLog(run_dir, on_episode, hparams=run_hparams)
    start = time.perf_counter()
    env = _make_env(config, evaluator, seed, workers, log, vectorized=getattr(agent_cls, "vectorized", False))
    try:
        instance = agent_cls(env, seed=seed, hparams=hparams, logdir=run_dir)
        instance.learn(episodes)
    finally:
        log.close()
        env.close()
    return SearchSummary(run_dir, log.episodes, log.top(5), log.failures(), log.evaluator.stats,
                         time.perf_counter() - start)


def _make_env(config: Config, evaluator: Any, seed: int, workers: int, log: SearchLog, vectorized: bool):
    """One recorded env; for agents that take a VecEnv, ``workers`` recorded sub-envs whose
    finished architectures are evaluated together. Either way the evaluator can ``prefetch``,
    so agents that propose whole architectures can hand it ``workers`` at a time."""
    if vectorized and workers > 1:
        from nas_gym.envs.vec import NasVecEnv

        return NasVecEnv(workers, config, evaluator=evaluator, seed=seed, wrap=lambda e: RecordEpisodes(e, log))
    if evaluator is None or isinstance(evaluator, str):
        from nas_gym.evaluators import make_evaluator

        evaluator = make_evaluator(config, kind=evaluator)
    batching = PrefetchEvaluator(evaluator, batch_size=workers)
    env = gym.make(ENV_ID, config=config, evaluator=batching, seed=seed, disable_env_checker=True)
    return RecordEpisodes(env, log)


def default_logdir() -> Path:
    return Path(os.environ.get("NAS_GYM_LOGDIR", "runs"))
