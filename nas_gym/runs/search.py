"""Running a search: one agent, one preset, one seed, one run folder.

The run folder holds everything needed to understand, repeat and resume the run: the resolved
config, the command line, TensorBoard events, a CSV of every evaluated architecture, and the
checkpoint (``nas_gym.runs.checkpoint``) that ``--resume`` continues from.

A checkpoint is taken every ``checkpoint_every`` episodes: the agent learns in chunks of that
many episodes (one ``learn`` call each), or, for agents with ``checkpoints_in_learn`` (SB3),
in one call that saves from inside. A stopped search loses at most the episodes since the last
checkpoint, and their evaluations are still in the persistent cache.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nas_gym.agents.base import AgentError, as_agent, declared, resolve_agent
from nas_gym.config import Config, load_config
from nas_gym.envs.nas_env import NasEnv
from nas_gym.evaluators.base import EvalStats, Evaluator
from nas_gym.evaluators.multi_fidelity import MultiFidelityEvaluator
from nas_gym.evaluators.prefetch import PrefetchEvaluator
from nas_gym.preflight import preflight
from nas_gym.runs import checkpoint
from nas_gym.runs.leaderboard import CONFIRMED_CSV
from nas_gym.runs.recorder import RecordEpisodes, SearchLog
from nas_gym.runs.runlog import Record, failures, read_records, record_runtime, top
from nas_gym.runs.workers import SimulatedWorkers, clock_wrapper, with_clock
from nas_gym.runs.workers import check_setup as check_simulated_workers
from nas_gym.storage import trust
from nas_gym.storage.atomic import atomic_write_text
from nas_gym.storage.cache import resolve_path

if TYPE_CHECKING:
    from nas_gym.evaluators.training import Backend

DEFAULT_CHECKPOINT_EVERY = 10  # episodes; a checkpoint costs milliseconds, an episode seconds of training
# Least seconds between two checkpoints of `nas-gym search` and `compare`: a checkpoint fsyncs
# about seven files (tens of ms on a busy disk), which every 10 episodes of an instant evaluator
# (the table) would dominate the run; with training, episodes take longer than this anyway.
CHECKPOINT_SECONDS = 1.0
RUN_CACHE = "cache.sqlite"  # a run's own cache file, when the config asks for none (evaluator.cache null)


@dataclass(frozen=True)
class SearchSummary:
    """:param resumed_from: episodes already done when this call started (0 for a new run).
    :param already_finished: a resumed run that had nothing left to do.
    :param simulated_seconds: when the last result arrived on the simulated clock of K workers
        (``evaluator.simulated_workers``; table and surrogate only), None without one."""

    run_dir: Path
    episodes: int
    top: list[Record]
    failures: list[Record]
    stats: EvalStats
    seconds: float
    resumed_from: int = 0
    already_finished: bool = False
    simulated_seconds: float | None = None


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a search, carrying the run folder so the command can say how to resume."""

    def __init__(self, run_dir: Path, episodes_done: int) -> None:
        super().__init__(f"search interrupted; run folder {run_dir}")
        self.run_dir = run_dir
        self.episodes_done = episodes_done


class StopSearch(Exception):
    """Raised by an ``on_episode`` callback to end a search before its episodes are done (a budget
    the agent does not know about, such as ``compare --budget-seconds``): ``run_search`` returns the
    summary of what was recorded, and the run folder is as a Ctrl-C leaves it."""


def safe_agent_name(agent: str) -> str:
    """An agent as a folder name: a built-in's name, or the class of ``module:Class`` /
    ``file.py:Class``, with anything but letters, digits, ``-`` and ``_`` replaced; never a path."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in agent.rsplit(":", 1)[-1])[:64] or "agent"


def make_run_dir(logdir: Path, agent: str, preset: str, seed: int, evaluator: str = "") -> Path:
    """A fresh folder ``<agent>-<preset>-<evaluator>-s<seed>-<time>`` under ``logdir`` (the
    evaluator in the name, since a table's and a trainer's scores of one preset are not on one
    scale); fails early, with a clear message, if it can't be written."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = "-".join(part for part in (safe_agent_name(agent), preset, safe_agent_name(evaluator) if evaluator else "")
                    if part)
    run_dir = logdir / f"{name}-s{seed}-{stamp}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = logdir / f"{name}-s{seed}-{stamp}-{n}"
    try:
        run_dir.mkdir(parents=True)
    except OSError as e:
        raise OSError(f"logdir {logdir}: cannot create a run folder ({e.strerror}); choose a writable --logdir") from None
    return run_dir


def write_run_files(run_dir: Path, config: Config, argv: list[str] | None = None, *, resume: bool = False) -> None:
    """The config, the command line and the device; a resume keeps the config and appends its command and device."""
    argv = sys.argv if argv is None else argv
    record_runtime(run_dir, config)
    if resume:
        with (run_dir / "command.txt").open("a") as f:
            f.write(shlex.join(argv) + "\n")
        return
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    (run_dir / "command.txt").write_text(shlex.join(argv) + "\n")


def _pin_cache(config: Config, run_dir: Path, cache: str | None) -> Config:
    """The config with ``evaluator.cache`` as an absolute path: ``cache`` (a resumed run's), the
    file ``auto`` resolves to now, or the run's own file when the config asks for none. A search
    without a file would lose every evaluation with its process, and ``--resume`` needs them."""
    if cache is None:
        resolved = resolve_path(config.evaluator.cache)
        cache = str((resolved or run_dir / RUN_CACHE).resolve())
    return load_config(config, {"evaluator.cache": cache})


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
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
    checkpoint_seconds: float = 0.0,
    resume: Path | None = None,
    schedule_episodes: int | None = None,
    backend: Backend | None = None,
    trust_run: bool = False,
) -> SearchSummary:
    """Run ``agent`` for ``episodes`` episodes on the env made from ``config``, or continue the
    stopped run in the folder ``resume`` (``logdir`` is then unused).

    :param evaluator: an Evaluator, an evaluator kind, or None for the config's own.
    :param checkpoint_every: episodes between checkpoints (rounded up to a multiple of
        ``evaluator.workers``, so batches of proposals are never cut by a checkpoint).
    :param on_episode: called after each recorded episode; it may raise :class:`StopSearch`.
    :param schedule_episodes: the budget agents scale their schedules to (``total_episodes``),
        when ``episodes`` is only a cap and ``on_episode`` stops the run first; default ``episodes``.
    :param backend: workers already started for ``config`` (``nas_gym.evaluators.start_workers``),
        for the evaluator made here, which closes them with the search; ignored when ``evaluator``
        is an Evaluator.
    :param trust_run: resume ``resume`` even if its files are unsigned or changed (``nas_gym.storage.trust``);
        only for a folder whose author the user trusts, since its config and checkpoint may run code.
    :raises AgentError, ConfigError, CheckpointError, OSError: bad input, before anything is trained.
    """
    if episodes < 1:
        raise AgentError(f"episodes must be >= 1, got {episodes}")
    if checkpoint_every < 1:
        raise AgentError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if resume is not None:
        checkpoint.read_manifest(Path(resume))  # a folder that is not a run fails before anything is read
        if not trust_run:
            checkpoint.verify_run(Path(resume))  # before the agent or config it names can run any code
    trust.signing_key()  # an unusable key fails before a run folder exists (it signs the first manifest)
    preflight(config)  # files the config names (a latency table), before a run folder or a worker exists
    agent_cls = resolve_agent(agent)
    workers = config.evaluator.workers
    every = math.ceil(checkpoint_every / workers) * workers
    before = _snapshot(Path(resume)) if resume is not None else None
    kind = evaluator if isinstance(evaluator, str) else config.evaluator.kind
    check_simulated_workers(config, kind, agent, agent_cls)  # simulated workers: before any folder exists
    run_dir = Path(resume) if resume is not None else make_run_dir(logdir, agent, config.name, seed, kind)
    with checkpoint.run_lock(run_dir):  # one search per run folder at a time
        if resume is not None:
            manifest = checkpoint.resume_manifest(run_dir, agent=agent, config=config, seed=seed, episodes=episodes,
                                                  hparams=hparams)
            if manifest.finished:
                return _finished_summary(run_dir)
            config = _pin_cache(config, run_dir, manifest.cache)
        else:
            pinned = _pin_cache(config, run_dir, None)
            manifest = checkpoint.Manifest(agent, config.name, seed, episodes, 0, pinned.evaluator.cache,
                                           checkpoint.config_hash(config), dict(hparams or {}))
            config = pinned
            write_run_files(run_dir, config, argv)
            checkpoint.write_manifest(run_dir, manifest)  # a folder --resume accepts from the very start
        run_hparams = {"agent": agent, "preset": config.name, "seed": seed, "episodes": episodes,
                       "evaluator": kind,
                       "epochs": config.train.epochs, "space": config.space.kind, "reward": config.reward.kind,
                       **{f"agent.{k}": v for k, v in (hparams or {}).items()}}
        start = time.perf_counter()
        resumed_from = manifest.episodes_done
        state = checkpoint.read_state(run_dir, manifest) if resume is not None else None
        log = SearchLog(run_dir, on_episode, hparams=run_hparams, resume=None if state is None else state.get("log", {}),
                        defer=True)
        env = None
        try:  # set-up: any failure here leaves no new run folder, and a resumed one as it was
            env = _make_env(config, evaluator, seed, workers, log, vectorized=declared(agent_cls).vectorized,
                            backend=backend)
            if state and "evaluator" in state:  # the budget charged before the stop counts, and what it found
                _from_checkpoint(run_dir, manifest, lambda: log.evaluator.load_state(state["evaluator"]))
            instance = as_agent(agent_cls(env, seed=seed, hparams=hparams, logdir=run_dir))
            if state:
                checkpoint.load_agent(run_dir, manifest, instance)
            # -- simulated workers (nas_gym.runs.workers): the clock, and the driver of K > 1 workers
            sim = SimulatedWorkers(instance, env) if clock_wrapper(env) is not None else None
            if sim is not None and state and "workers" in state:
                _from_checkpoint(run_dir, manifest, lambda: sim.load_state(state["workers"]))
            learn = instance.learn if sim is None else sim.learn
            # -- end simulated workers
            if state is None:
                log.open()
            else:  # the CSV cut back to the checkpoint's counters, which may be damaged
                _from_checkpoint(run_dir, manifest, log.open)
        except BaseException:
            log.close()
            if env is not None:
                env.close()
            if resume is None:
                shutil.rmtree(run_dir, ignore_errors=True)
            else:
                _roll_back(run_dir, before)
            raise
        if resume is not None:  # the checkpoint loaded: only now does the resume change the folder
            checkpoint.clean_stale(run_dir)
            checkpoint.write_manifest(run_dir, manifest)
            write_run_files(run_dir, config, argv, resume=True)
        try:
            instance.total_episodes = schedule_episodes or episodes  # schedules scale to the whole budget

            last_save = time.monotonic()

            def save_at(done: int) -> None:
                nonlocal manifest, last_save
                if done < episodes and time.monotonic() - last_save < checkpoint_seconds:
                    return  # too soon after the last one; the end is always saved
                log.flush()
                write_confirmed(run_dir, log.evaluator)
                manifest = checkpoint.save(run_dir, dataclasses.replace(manifest, episodes_done=done), instance,
                                           {"log": log.state(), "stats": dataclasses.asdict(log.evaluator.stats),
                                            "evaluator": log.evaluator.state(),
                                            **({} if sim is None else {"workers": sim.state()})})
                last_save = time.monotonic()

            if instance.checkpoints_in_learn:
                # SB3 agents: learning in chunks would change the run (see nas_gym.agents.sb3), so one learn
                # call saves from inside its loop
                if resumed_from < episodes:
                    instance.learn(episodes - resumed_from, checkpoint=lambda n: save_at(resumed_from + n),
                                   checkpoint_every=every)
                    save_at(episodes)
            else:
                # chunks of one learn call each give exactly the run of one call for these agents
                done = resumed_from
                while done < episodes:
                    chunk = min(every, episodes - done)
                    learn(chunk)
                    done += chunk
                    save_at(done)
        except StopSearch:
            pass  # the caller's budget is spent: summarise what was recorded
        except KeyboardInterrupt:
            raise SearchInterrupted(run_dir, manifest.episodes_done) from None
        finally:
            log.close()
            env.close()
        return SearchSummary(run_dir, log.episodes, log.top(5), log.failures(), log.evaluator.stats,
                             time.perf_counter() - start, resumed_from=resumed_from,
                             simulated_seconds=None if sim is None else sim.simulated_seconds)


def _snapshot(run_dir: Path) -> set[Path]:
    return set(run_dir.rglob("*")) if run_dir.is_dir() else set()


def _roll_back(run_dir: Path, before: set[Path] | None) -> None:
    """Remove what a failed resume created (TensorBoard files, a cache's journal), deepest first;
    it changed no file that was there before."""
    for path in sorted(_snapshot(run_dir) - (before or set()), key=lambda p: len(p.parts), reverse=True):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _from_checkpoint(run_dir: Path, manifest: checkpoint.Manifest, restore: Callable[[], None]) -> None:
    """Run ``restore`` on the checkpoint's saved state; a state of the wrong shape is one line."""
    try:
        restore()
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
        raise checkpoint.CheckpointError(f"--resume {run_dir}: checkpoint {manifest.checkpoint} holds a state of the "
                                         f"wrong shape ({type(e).__name__}); the run cannot be resumed") from None


def write_confirmed(run_dir: Path, evaluator: Evaluator) -> None:
    """A multi-fidelity search's high-fidelity results, for the leaderboard (atomically replaced,
    like a checkpoint; a resumed evaluator holds those from before the stop). Other evaluators
    write nothing."""
    evaluator = evaluator.unwrapped
    if not isinstance(evaluator, MultiFidelityEvaluator):
        return
    rows = [(e.arch.text(), e.high.val_acc, e.low.val_acc, e.high.fidelity, e.high.params, e.high.status)
            for e in evaluator.leaderboard() if e.high is not None]
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(("arch", "val_acc", "low_val_acc", "epochs", "params", "status"))
    writer.writerows(rows)
    atomic_write_text(run_dir / CONFIRMED_CSV, text.getvalue())


def _finished_summary(run_dir: Path) -> SearchSummary:
    """The summary of a run that already did all its episodes, from its CSV and last counters."""
    manifest = checkpoint.read_manifest(run_dir)
    state = checkpoint.read_state(run_dir, manifest)
    records = read_records(run_dir)
    try:
        episodes = int(state.get("log", {}).get("episodes", manifest.episodes_done))
        stats = EvalStats(**state.get("stats", {}))
    except (TypeError, ValueError):
        raise checkpoint.CheckpointError(f"--resume {run_dir}: checkpoint {manifest.checkpoint} holds a state of the "
                                         "wrong shape; the run cannot be summarised") from None
    return SearchSummary(run_dir, episodes, top(records, 5), failures(records), stats, 0.0,
                         resumed_from=manifest.episodes_done, already_finished=True)


def _make_env(config: Config, evaluator: Any, seed: int, workers: int, log: SearchLog, vectorized: bool,
              backend: Backend | None = None):
    """One recorded env; for agents that take a VecEnv, ``workers`` recorded sub-envs whose
    finished architectures are evaluated together. Either way the evaluator can ``prefetch``,
    so agents that propose whole architectures can hand it ``workers`` at a time."""
    owned = evaluator is None or isinstance(evaluator, str)
    if owned:  # made here, so closed with the env: that stops the workers this search started
        from nas_gym.evaluators import make_evaluator

        evaluator = make_evaluator(config, kind=evaluator, run_seed=seed, backend=backend)
    if vectorized and workers > 1:
        from nas_gym.agents.sb3_vec import NasVecEnv

        return NasVecEnv(workers, config, evaluator=evaluator, seed=seed, wrap=lambda e: RecordEpisodes(e, log),
                         close_evaluator=owned)
    batching = PrefetchEvaluator(evaluator, batch_size=workers)
    env = NasEnv(config, evaluator=batching, seed=seed, close_evaluator=owned)
    return RecordEpisodes(with_clock(env, config), log)  # with_clock: simulated workers
