"""Collecting the surrogate's training data: real trainings of a preset's architectures, resumably
(``scripts/build_surrogate.py`` is its command line). It sits with the runs, above the agents,
because part of the plan is agent trajectories driven through the env.

The plan is a fixed sequence of rounds; round ``r`` trains, with the preset's own trainer:

1. the next ``--uniform`` architectures of one stream of uniform draws from the space, first seed;
2. the first ``--noise`` of them again under every other seed of ``--seeds`` (the seed-noise set);
3. one agent trajectory: ``--episodes`` episodes of evolution, Q-learning or REINFORCE in turn
   (agent seed ``1000 + r``), driving the env with the real training evaluator, so the data
   holds the good regions agents actually visit, not only uniform draws.

Rounds interleave the sources, so a build stopped at any point is a usable mix of all of them.
After the rounds, ``--extra-uniform N`` trains the next N architectures of the uniform stream
(first seed only), to make uniform draws the majority once the agents' good regions are covered.

Resuming: every result goes, as it arrives, into a ``ResultCache`` (default
``builds/<preset>-surrogate.sqlite``) under the training evaluator's own context for its seed,
so the data is exactly what ``evaluator: train`` gives. A build started again replays the plan:
stored results come back from the cache (an agent replays its trajectory, since equal rewards
give equal decisions) and only the missing ones are trained. Which source proposed each
architecture is also appended to a log beside the cache (``<cache>.sources.jsonl``), so an
architecture stays in the data even if a changed agent no longer replays the trajectory that
found it. Agents propose batches of a fixed
``PROPOSALS`` architectures whatever ``--workers`` is, so the trajectories do not depend on the
number of workers.

The clock: ``train_seconds`` is the CPU time of the worker process for the evaluation (one torch
thread), as in ``nas_gym.benchmarks.table_build``: the machine is shared, and wall time would charge an
architecture for its neighbours' work.

Output: ``builds/<preset>-surrogate-data.jsonl.gz`` after every round (format in
``nas_gym.surrogates.data``), a working copy that a running build keeps rewriting. To ship:
``--export-only --out nas_gym/surrogates/<preset>-data.jsonl.gz``, then
``scripts/fit_surrogate.py`` fits the shipped model to exactly that file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.config import Config, RuntimeConfig, TrainConfig, load_config
from nas_gym.evaluators.prefetch import PrefetchEvaluator
from nas_gym.evaluators.training import TrainingEvaluator
from nas_gym.execution.backends import Backend, BackendBase
from nas_gym.results import EvalResult
from nas_gym.spaces.base import Architecture
from nas_gym.storage.cache import ResultCache
from nas_gym.surrogates.data import DataPlan, collect_rows, write_data
from nas_gym.training.device import resolve_device
from nas_gym.training.numerics import numerics_identity

RUNTIME = RuntimeConfig(device="cpu", threads=1)
PROPOSALS = 2  # architectures an agent proposes at a time: part of the plan, not of the machine
AGENT_SEED_OFFSET = 1000
OnResult = Callable[[int, EvalResult], None]


# -- workers: data loaded once per process ----------------------------------------------------
_WORKER: dict[str, Any] = {}


def init_worker(config: Config, parent: int | None = None) -> None:
    import torch

    if parent is not None:  # a pool worker: it ends with the script, even one killed with SIGKILL
        from nas_gym.execution.lifeline import die_with_parent

        die_with_parent(parent)

    from nas_gym.data import load_dataset

    torch.set_num_threads(1)
    data = load_dataset(config.data)
    _WORKER.update(data=data, space=config.search_space(data.input_shape))
    # The first training in a process pays one-off costs (lazy kernel set-up): pay them on a
    # throwaway network, or the clock would charge them to the first architecture trained.
    _train(_WORKER["space"].sample(np.random.default_rng(0)).text(), TrainConfig(epochs=1))


def _train(arch_text: str, train: TrainConfig) -> EvalResult:
    from nas_gym.training.train import evaluate_architecture

    space = _WORKER["space"]
    cpu = time.process_time()
    result = evaluate_architecture(space.parse(arch_text), _WORKER["data"], train, RUNTIME, space=space)
    return replace(result, train_seconds=time.process_time() - cpu)


class PoolBackend(BackendBase):
    """A ``Backend`` for the training evaluator on the build's one process pool, streaming each
    result as it arrives so the evaluator stores it at once. Each seed's evaluator gets its own
    recipe on the same workers through ``with_config``, as a search's fidelities do."""

    def __init__(self, pool: ProcessPoolExecutor, train: TrainConfig) -> None:
        self.pool, self.train = pool, train

    def with_config(self, config: Config) -> PoolBackend:
        return PoolBackend(self.pool, config.train)

    def run(self, archs: Sequence[Architecture], on_result: OnResult | None = None) -> list[EvalResult]:
        futures: dict[Future, int] = {self.pool.submit(_train, a.text(), self.train): i for i, a in enumerate(archs)}
        results: list[EvalResult | None] = [None] * len(archs)
        for f in as_completed(futures):
            i = futures[f]
            results[i] = f.result()
            if on_result is not None:
                on_result(i, results[i])
        return results  # type: ignore[return-value]

    def close(self) -> None:
        """The pool belongs to the build, not to one evaluator."""


class Missing(Exception):
    """Raised by ``CacheOnlyBackend``: the plan reached an evaluation the cache does not hold."""


class CacheOnlyBackend(BackendBase):
    """A backend that trains nothing: ``--export-only`` replays the plan as far as the cache goes."""

    def run(self, archs: Sequence[Architecture], on_result: OnResult | None = None) -> list[EvalResult]:
        raise Missing(archs[0].text())


# -- the plan ---------------------------------------------------------------------------------
class Build:
    """Runs the plan's rounds against one cache, remembering which source proposed each architecture."""

    def __init__(self, config: Config, plan: DataPlan, cache: ResultCache, backend: Backend,
                 log: Path | None = None, write_log: bool = True) -> None:
        self.config, self.plan, self.cache = config, plan, cache
        self.configs = {s: load_config(config, {"train.seed": s}) for s in plan.seeds}
        # One backend for every seed: each evaluator asks it for its own recipe (``with_config``).
        self.evaluators = {s: TrainingEvaluator(c, cache=cache, backend=backend)
                           for s, c in self.configs.items()}
        self.space = self.evaluators[plan.seeds[0]].space
        self.sources: dict[str, list[str]] = {}  # arch text -> sources, in order of first proposal
        self.archs: dict[str, Architecture] = {}
        self._rng = np.random.default_rng(plan.sample_seed)
        self._stream: list[Architecture] = []
        self.log = log if write_log else None
        if log is not None and log.is_file():
            for line in log.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self._note(self.space.parse(entry["arch"]), entry["source"], write=False)

    def _note(self, arch: Architecture, source: str, write: bool = True) -> None:
        self.archs.setdefault(arch.text(), arch)
        sources = self.sources.setdefault(arch.text(), [])
        if source not in sources:
            sources.append(source)
            if write and self.log is not None:
                with self.log.open("a") as f:
                    f.write(json.dumps({"arch": arch.text(), "source": source}) + "\n")

    def uniform(self, r: int) -> list[Architecture]:
        """Round ``r``'s share of one stream of uniform draws (so the stream does not depend on the
        round size, and a build started with another ``--uniform`` keeps what it trained)."""
        while len(self._stream) < (r + 1) * self.plan.uniform:
            self._stream.append(self.space.sample(self._rng))
        return self._stream[r * self.plan.uniform : (r + 1) * self.plan.uniform]

    def run_round(self, r: int, train: bool) -> None:
        archs = self.uniform(r)
        noisy = archs[: self.plan.noise]
        for a in archs:
            self._note(a, "uniform")
        first, others = self.plan.seeds[0], self.plan.seeds[1:]
        if train:
            self.evaluators[first].evaluate_many(archs)
            # all seeds of the noise set in one batch per seed: every worker stays busy
            for s in others:
                self.evaluators[s].evaluate_many(noisy)
        self.run_agent(r)

    def run_extra(self, train: bool) -> None:
        """The ``extra_uniform`` draws that follow the rounds' share of the uniform stream."""
        if not self.plan.extra_uniform:
            return
        self.uniform(self.plan.rounds - 1)  # draws the stream up to the end of the rounds
        while len(self._stream) < self.plan.rounds * self.plan.uniform + self.plan.extra_uniform:
            self._stream.append(self.space.sample(self._rng))
        archs = self._stream[self.plan.rounds * self.plan.uniform :]
        for a in archs:
            self._note(a, "uniform")
        if train:  # each result is stored as it arrives: a stopped build keeps what it trained
            self.evaluators[self.plan.seeds[0]].evaluate_many(archs)

    def run_agent(self, r: int) -> None:
        """One agent trajectory through the env and the first seed's training evaluator."""
        from nas_gym.agents.base import as_agent, resolve_agent
        from nas_gym.envs.nas_env import NasEnv

        name = self.plan.agents[r % len(self.plan.agents)]
        seed = AGENT_SEED_OFFSET + r
        env = NasEnv(self.configs[self.plan.seeds[0]],
                     evaluator=_Noting(self.evaluators[self.plan.seeds[0]], self, name), seed=seed)
        agent = as_agent(resolve_agent(name)(env, seed=seed, hparams=None, logdir=None))
        agent.total_episodes = self.plan.episodes  # declared by BaseAgent: schedules scale to it
        try:
            agent.learn(self.plan.episodes)
        except Missing:
            pass  # export: the trajectory stops where the cache does
        finally:
            env.close()

    def rows(self) -> list[dict[str, Any]]:
        return collect_rows(self.archs, self.sources, self.cache, self.evaluators)


class _Noting(PrefetchEvaluator):
    """The env's evaluator during an agent's trajectory: batches of ``PROPOSALS``, and every
    architecture the agent proposes is noted under the agent's name."""

    def __init__(self, inner: TrainingEvaluator, build: Build, source: str) -> None:
        super().__init__(inner, batch_size=PROPOSALS)
        self.build, self.source = build, source

    def prefetch(self, archs: Sequence[Architecture]) -> None:
        for a in archs:
            self.build._note(a, self.source)
        super().prefetch(archs)

    def evaluate(self, arch: Architecture) -> EvalResult:
        self.build._note(arch, self.source)
        return super().evaluate(arch)


def export(build: Build, out: Path, rounds_done: int, started: float) -> None:
    rows = build.rows()
    size = write_data(out, build.config, build.plan, rows, rounds_done=rounds_done,
                      numerics=numerics_identity(RUNTIME, resolve_device(RUNTIME.device)))
    n_seeds = sum(sum(v is not None for v in r["val_acc"]) for r in rows)
    print(f"[build_surrogate] {time.strftime('%H:%M:%S')} wrote {out}: {len(rows)} architectures, {n_seeds} "
          f"trainings, {size:,} bytes; {time.perf_counter() - started:.0f}s this run", flush=True)
