"""Parallel workers on the simulated clock: a table or surrogate search run as if K workers trained.

A table (or surrogate) evaluation is instant, but it is charged the seconds its training took
(``stats.train_seconds``). :class:`WorkerClock` places each evaluation on one of K simulated
workers for those seconds, so a search has a simulated time: when its last result arrives.

* **Asynchronous** (random search, evolution, local search, ASHA): a job starts as soon as a
  worker is free (the earliest free one; ties go to the lowest worker index), and the agent is
  told results in order of arrival (ties: the earlier asked first).
* **Synchronous**: a batch of K jobs starts together; the next batch starts when the slowest of
  this one has finished, and the agent is told the whole batch then.

:class:`SimulatedWorkers` drives an ask/tell agent (``agents.ask_tell``) with K workers. It
evaluates each asked architecture through the env at once (so it is recorded and charged as in
any search), but holds the result back and tells the agent only once it would have arrived:
before each ``ask`` (made when a worker frees, at simulated time ``t``) the agent learns exactly
the results that finished by ``t``. An agent can therefore never plan with a result it could
not yet have had. The idea and the charging follow Syne Tune's simulator backend (Salinas et
al., "Syne Tune: A Library for Large Scale Hyperparameter Tuning and Reproducible Research",
AutoML Conf 2022), which replays tabulated training times on simulated workers, and NATS-Bench's
simulated time (Dong et al., TPAMI 2021), which charges each query its recorded training time.

:class:`SimulatedClock` is the env wrapper that puts every evaluated episode on the clock and
adds ``sim_start``, ``sim_finish`` and ``sim_worker`` to the episode's final ``info``; the run
record keeps the first two, so curves can be drawn against simulated time. A repeat of an
architecture still in training elsewhere is a cache hit (0 seconds) but its result cannot
arrive before the first one does: it holds its worker until then.

Pure bookkeeping: nothing here imports torch.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from nas_gym.agents.base import AgentError, is_ask_tell, play
from nas_gym.config import Config, ConfigError
from nas_gym.runs.runlog import Record
from nas_gym.spaces.base import Architecture

SIMULATED_KINDS = ("table", "surrogate")  # evaluators that charge recorded (or predicted) seconds


@dataclass(frozen=True)
class Job:
    """One evaluation on the clock. :param index: its place in the order jobs were placed."""

    index: int
    worker: int
    start: float
    finish: float


class WorkerClock:
    """K simulated workers; :meth:`place` puts the next job on one.

    :param workers: K >= 1.
    :param synchronous: batches of K that start together (see the module docstring).
    """

    def __init__(self, workers: int, synchronous: bool = False) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers, self.synchronous = workers, synchronous
        self.free = [0.0] * workers  # asynchronous: when each worker is free again
        self.batch: list[float] = []  # synchronous: finish times of the batch under way
        self.barrier = 0.0  # synchronous: when the batch under way started
        self.placed = 0
        self.makespan = 0.0  # when the last result placed so far arrives: the search's time

    def next_start(self) -> float:
        """When the next job would start (a worker frees, or the next batch begins)."""
        if self.synchronous:
            return max(self.batch) if len(self.batch) == self.workers else self.barrier
        return min(self.free)

    def at_batch_start(self) -> bool:
        """Synchronous: the next job opens a new batch (so the last one has all arrived)."""
        return len(self.batch) in (0, self.workers)

    def place(self, duration: float, ready: float = 0.0) -> Job:
        """The next job, taking ``duration`` seconds; its result arrives no earlier than ``ready``."""
        if self.synchronous:
            if len(self.batch) == self.workers:
                self.barrier, self.batch = max(self.batch), []
            worker, start = len(self.batch), self.barrier
        else:
            worker = min(range(self.workers), key=lambda i: (self.free[i], i))
            start = self.free[worker]
        finish = max(start + max(duration, 0.0), ready)
        if self.synchronous:
            self.batch.append(finish)
        else:
            self.free[worker] = finish
        job = Job(self.placed, worker, start, finish)
        self.placed += 1
        self.makespan = max(self.makespan, finish)
        return job

    def state(self) -> dict[str, Any]:
        return {"workers": self.workers, "synchronous": self.synchronous, "free": list(self.free),
                "batch": list(self.batch), "barrier": self.barrier, "placed": self.placed, "makespan": self.makespan}

    def load_state(self, state: dict[str, Any]) -> None:
        if int(state["workers"]) != self.workers:
            raise ValueError(f"a clock of {state['workers']} workers cannot continue on {self.workers}")
        self.synchronous = bool(state["synchronous"])
        self.free = [float(t) for t in state["free"]]
        self.batch = [float(t) for t in state["batch"]]
        self.barrier, self.placed = float(state["barrier"]), int(state["placed"])
        self.makespan = float(state["makespan"])


def schedule(durations: list[float], workers: int, synchronous: bool = False) -> list[Job]:
    """The jobs of ``durations``, placed in order on a fresh clock."""
    clock = WorkerClock(workers, synchronous)
    return [clock.place(d) for d in durations]


def arrival_order(jobs: list[Job]) -> list[Job]:
    """Jobs in the order their results arrive: by finish time, ties by the order they were placed."""
    return sorted(jobs, key=lambda j: (j.finish, j.index))


class SimulatedClock(gym.Wrapper):
    """Places every evaluated episode of the wrapped NasEnv on a :class:`WorkerClock` for the
    seconds the evaluator charged it, and adds ``sim_start``, ``sim_finish`` and ``sim_worker``
    to its final ``info``. Deterministic: the same run gives the same times.

    :param workers: the clock's K; with one worker the times are the cumulative charged seconds.
    """

    def __init__(self, env: gym.Env, workers: int = 1) -> None:
        super().__init__(env)
        self.sim_clock = WorkerClock(workers)
        self._arrival: dict[str, float] = {}  # key -> when its latest evaluation's result arrives

    def step(self, action):
        stats = self.env.get_wrapper_attr("evaluator").stats
        before = stats.train_seconds
        obs, reward, terminated, truncated, info = self.env.step(action)
        if (terminated or truncated) and "val_acc" in info:
            key = self.env.get_wrapper_attr("arch").key()
            job = self.sim_clock.place(stats.train_seconds - before, ready=self._arrival.get(key, 0.0))
            self._arrival[key] = job.finish
            if len(self._arrival) > 8 * self.sim_clock.workers:  # forget results no future job can wait for
                now = self.sim_clock.next_start()  # no job starts before it
                self._arrival = {k: t for k, t in self._arrival.items() if t > now}
            info = info | {"sim_start": job.start, "sim_finish": job.finish, "sim_worker": job.worker}
        return obs, reward, terminated, truncated, info

    def state(self) -> dict[str, Any]:
        return {"clock": self.sim_clock.state(), "arrival": dict(sorted(self._arrival.items()))}

    def load_state(self, state: dict[str, Any]) -> None:
        self.sim_clock.load_state(state["clock"])
        self._arrival = {str(k): float(t) for k, t in state["arrival"].items()}


def clock_wrapper(env: gym.Env) -> SimulatedClock | None:
    """The :class:`SimulatedClock` in ``env``'s chain of wrappers, if any."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, SimulatedClock):
            return env
        env = env.env
    return None


def check_setup(config: Config, kind: str, agent: str, agent_cls: type) -> None:
    """Refuse, in one line and before anything is written, what K > 1 simulated workers cannot do.

    :raises ConfigError: an evaluator without recorded seconds.
    :raises AgentError: an agent without ask/tell.
    """
    k = config.evaluator.simulated_workers
    if k == 1:
        return
    if kind not in SIMULATED_KINDS:
        raise ConfigError(f"evaluator.simulated_workers={k} replays recorded training seconds, so it needs evaluator "
                          f"kind table or surrogate, not {kind!r}; set evaluator.simulated_workers=1 (real training "
                          "runs in parallel with evaluator.workers)")
    if not is_ask_tell(agent_cls):
        raise AgentError(f"agent {agent!r} has no ask/tell, so it cannot run on evaluator.simulated_workers={k} (RL "
                         "agents learn from each episode in turn); set evaluator.simulated_workers=1 or use random, "
                         "evolution, local or another ask/tell agent")


def with_clock(env: gym.Env, config: Config) -> gym.Env:
    """``env`` with a :class:`SimulatedClock` of ``evaluator.simulated_workers`` workers when its
    evaluator charges recorded seconds one architecture at a time (table, surrogate; one real
    worker); otherwise ``env`` itself."""
    from nas_gym.evaluators.surrogate import SurrogateEvaluator
    from nas_gym.evaluators.table import TableEvaluator

    evaluator = env.get_wrapper_attr("evaluator").unwrapped
    if isinstance(evaluator, TableEvaluator | SurrogateEvaluator) and config.evaluator.workers == 1:
        return SimulatedClock(env, config.evaluator.simulated_workers)
    return env


class SimulatedWorkers:
    """Runs an agent on the K workers of the env's :class:`SimulatedClock`.

    With one worker (or no clock) ``learn`` is the agent's own. With K > 1 the agent must
    implement ask/tell: each ``ask`` is made when a worker frees, after the agent was told every
    result that arrived by then; results still in training when ``learn`` returns are told in a
    later call (and kept in :meth:`state` across a checkpoint), so ``learn(a)`` then ``learn(b)``
    is ``learn(a + b)``.

    :param env: the env the agent plays on; a clock is added (outermost) when it has none.
    :param workers: the clock's K when one is added; ignored when ``env`` has a clock.
    """

    def __init__(self, agent: Any, env: gym.Env, workers: int = 1) -> None:
        wrapper = clock_wrapper(env)
        if wrapper is None:
            env = wrapper = SimulatedClock(env, workers)
        self.agent, self.env, self.wrapper = agent, env, wrapper
        self.clock = wrapper.sim_clock
        if self.clock.workers > 1:
            if not is_ask_tell(agent):
                raise AgentError(f"agent {type(agent).__name__} has no ask/tell, so it cannot run on "
                                 f"{self.clock.workers} simulated workers (RL agents learn from each episode in turn)")
            if self.clock.placed == 0:
                self.clock.synchronous = bool(agent.synchronous)
        self._pending: list[tuple[float, int, Architecture, float, dict[str, Any]]] = []  # a heap by arrival
        self._asked = 0

    @property
    def simulated_seconds(self) -> float:
        """When the last result placed so far arrives: the search's simulated time."""
        return self.clock.makespan

    def learn(self, episodes: int) -> None:
        """With one worker, the agent's own ``learn`` (today's run, exactly); else :meth:`drive`."""
        if self.clock.workers == 1:
            self.agent.learn(episodes)
        else:
            self.drive(episodes)

    def drive(self, episodes: int) -> None:
        """``episodes`` asks on the clock's workers, each after the results that arrived by then."""
        if not is_ask_tell(self.agent):
            raise AgentError(f"agent {type(self.agent).__name__} has no ask/tell")
        for _ in range(episodes):
            self._deliver()
            arch = self.agent.ask()
            reward, info = self._play(arch)
            if "sim_finish" not in info:
                raise RuntimeError(f"episode of {arch.text()} was not placed on the simulated clock")
            heapq.heappush(self._pending, (float(info["sim_finish"]), self._asked, arch, reward, info))
            self._asked += 1

    def _deliver(self) -> None:
        """Tell the agent every result that has arrived when the next job starts."""
        if self.clock.synchronous:
            if not self.clock.at_batch_start():
                return
            now = float("inf")  # the batch under way has all arrived when the next one starts
        else:
            now = self.clock.next_start()
        while self._pending and self._pending[0][0] <= now:
            _, _, arch, reward, info = heapq.heappop(self._pending)
            self.agent.tell(arch, reward, info)

    def _play(self, arch: Architecture) -> tuple[float, dict[str, Any]]:
        return play(self.env, arch, self.agent.reset_options(arch))

    def state(self) -> dict[str, Any]:
        """The clock and the results not yet told (JSON-ready), for a checkpoint."""
        pending = [[t, i, a.text(), r, {k: _plain(v) for k, v in info.items()}]
                   for t, i, a, r, info in sorted(self._pending, key=lambda p: (p[0], p[1]))]
        return {**self.wrapper.state(), "pending": pending, "asked": self._asked}

    def load_state(self, state: dict[str, Any]) -> None:
        self.wrapper.load_state(state)
        space = self.env.get_wrapper_attr("space")
        self._pending = [(float(t), int(i), space.parse(a), float(r), dict(info)) for t, i, a, r, info in state["pending"]]
        heapq.heapify(self._pending)
        self._asked = int(state["asked"])


def by_arrival(records: list[Record]) -> list[Record]:
    """Records of a simulated run in the order their results arrived (``sim_finish``, then
    episode): the order an anytime curve against simulated time follows. With K > 1 workers the
    episode order is the order of asking, and a long job asked early arrives late.

    :raises ValueError: a record without simulated times (a run without a simulated clock).
    """
    if any(r.sim_finish is None for r in records):
        raise ValueError("records without sim_finish: the run had no simulated clock (table or surrogate only)")
    return sorted(records, key=lambda r: (r.sim_finish, r.episode))


def _plain(value: Any) -> Any:
    """A JSON-ready scalar (numpy scalars become Python ones)."""
    return value.item() if hasattr(value, "item") else value
