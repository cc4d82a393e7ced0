"""What the library searchers (Optuna's samplers, SMAC) share: a fixed-length encoding of an
episode's decisions, and an ask/tell driver that turns the library's proposals into episodes.

Why a fixed-length encoding with repair. A library optimiser sees a fixed set of parameters, and
an Optuna distribution (or a ConfigSpace hyperparameter) cannot change its choices between
trials; an episode's decisions are state-dependent: the layer chain has a variable length ending
in ``stop`` and masks (no pooling after pooling, no downsampling below size 2, no ``stop`` before
``min_depth``), the example MLP space forbids ``stop`` before ``min_layers``, only the cell (6
edges, every op allowed) is fixed. The spaces define no encode/decode of their own
(``nas_gym.spaces.base``), so the encoding here is generic:

* decision ``t`` of an episode is the categorical parameter ``d<t>`` over the space's whole
  action set (``n_actions`` choices, ``stop`` included), for ``t < space.max_steps``;
* a proposal is decoded by playing its values in order from ``space.empty()``; a value the mask
  forbids at that point is **repaired** to the next allowed action in cyclic index order (a
  deterministic rule, so a proposal always decodes to the same architecture); values after the
  architecture is complete are not read.

So the optimiser searches the deterministic function ``f(x) = reward(decode(x))`` over the full
product of choices: many proposals alias one architecture (every padding after ``stop``), and a
repaired proposal is told the reward of the architecture it decoded to, which is what was
evaluated. Nothing is hidden: each trial keeps the architecture it decoded to and whether it was
repaired, and the agent logs ``nas/repaired_proposals`` and counts them (``repaired``).

Duplicates are not charged as evaluations: a proposal that decodes to an architecture already
evaluated is told the known result at once, without an episode, and the optimiser is asked again
(``nas/duplicate_proposals``); one that decodes to an architecture still being evaluated (with
several asynchronous workers) waits for that result. After ``duplicate_draws`` duplicates in a
row, the agent evaluates a uniformly drawn architecture not seen yet instead and tells the
optimiser about it as an added trial (``nas/random_fallbacks``), so ``learn(n)`` always plays
``n`` episodes, all of new architectures while the space has any left.
"""

from __future__ import annotations

import importlib
import pickle
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from nas_gym.agents.base import AgentError, BaseAgent, play
from nas_gym.spaces.base import Architecture, SearchSpace

_UNSEEN_DRAWS = 1000  # uniform draws to find an unseen architecture before accepting a seen one


def import_extra(module: str, extra: str, agent: str) -> Any:
    """``module`` imported, or one line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise AgentError(f"--agent {agent} needs the {module} package, which is not installed; "
                         f"pip install 'nas-gym[{extra}]'") from None


class PositionEncoding:
    """Episodes of ``space`` as ``max_steps`` categorical decisions over the whole action set.

    :param space: the search space.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.positions = int(space.max_steps)
        self.n_actions = int(space.n_actions)

    @staticmethod
    def name(t: int) -> str:
        return f"d{t}"

    def names(self) -> list[str]:
        return [self.name(t) for t in range(self.positions)]

    def decode(self, values: list[int]) -> tuple[Architecture, int]:
        """The architecture ``values`` build and how many of the values read were repaired.

        :raises RuntimeError: the space allows no action at some point, or its episode does not
            end within ``max_steps`` decisions (a space that breaks its own protocol).
        """
        partial, repaired = self.space.empty(), 0
        for t in range(self.positions):
            mask = self.space.mask(partial)
            action = int(values[t])
            if not mask[action]:
                allowed = np.flatnonzero(np.roll(mask, -action))
                if allowed.size == 0:
                    raise RuntimeError(f"{self.space.describe(partial)}: the space allows no action")
                action = int((action + allowed[0]) % self.n_actions)  # next allowed, cyclically
                repaired += 1
            partial, done = self.space.step(partial, action)
            if done:
                return partial, repaired
        raise RuntimeError(f"an episode of {type(self.space).__name__} did not end within max_steps {self.positions}")

    def encode(self, arch: Architecture) -> list[int]:
        """Values that decode to ``arch`` without repair: its actions, padded with 0 (not read)."""
        actions = [int(a) for a in self.space.actions_of(arch)]
        return actions + [0] * (self.positions - len(actions))


class ProposalsExhausted(Exception):
    """Raised by a subclass's ``_propose`` when its library has no configuration left to propose
    (SMAC says so once every configuration of a small space is in its history): the driver then
    draws unseen architectures uniformly, as after too many duplicates, and tells the library nothing more."""


@dataclass
class Counters:
    """What the driver counts, for the logs and for a resumed run."""

    episodes_done: int = 0
    proposals: int = 0  # proposals decoded, duplicates included
    repaired: int = 0  # proposals with at least one value repaired
    duplicates: int = 0  # proposals answered from a known or pending result, without an episode
    fallbacks: int = 0  # uniformly drawn architectures evaluated after duplicate_draws duplicates


class ProposalAgent(BaseAgent):
    """The ask/tell driver over a library optimiser; a subclass supplies ``_propose`` (the next
    proposal: a handle and its values), ``_propose_fixed`` (a handle for given values) and
    ``_report`` (tell the library a handle's result).

    Implements the ask/tell contract asynchronously: ``ask`` may be called again before earlier
    architectures are told, and the libraries keep those proposals pending.
    """

    synchronous = False
    duplicate_draws = 10  # subclasses take it from their hyperparameters

    def __init__(self, env: gym.Env, seed: int = 0, logdir: Path | None = None) -> None:
        self.env = env
        self.space = self.context.space
        self.encoding = PositionEncoding(self.space)
        self.rng = np.random.default_rng(seed)  # the uniform fallback draws only
        self.logdir = Path(logdir) if logdir is not None else None
        self.counters = Counters()
        self.results: dict[str, tuple[Architecture, float, dict[str, Any]]] = {}  # key -> told result
        self.pending: dict[str, list[Any]] = {}  # key -> handles waiting for its result
        self.exhausted = False  # the library has nothing left to propose (ProposalsExhausted)
        self._record = self.context.record_scalar

    # -- what a subclass supplies -------------------------------------------------------------
    def _propose(self) -> tuple[Any, list[int]]:
        raise NotImplementedError

    def _propose_fixed(self, values: list[int]) -> Any:
        raise NotImplementedError

    def _report(self, handle: Any, arch: Architecture, reward: float, info: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- the contract --------------------------------------------------------------------------
    def ask(self) -> Architecture:
        """The next architecture to evaluate: the optimiser's next proposal that is new, else,
        after ``duplicate_draws`` duplicates, a uniformly drawn unseen one."""
        for _ in range(0 if self.exhausted else max(1, self.duplicate_draws)):
            try:
                handle, values = self._propose()
            except ProposalsExhausted:
                self.exhausted = True
                break
            arch, repaired = self.encoding.decode(values)
            self.counters.proposals += 1
            self.counters.repaired += bool(repaired)
            key = arch.key()
            if key in self.results:  # known: tell it now, no episode
                self.counters.duplicates += 1
                self._report(handle, *self.results[key])
                continue
            if key in self.pending:  # being evaluated: told when its result arrives
                self.counters.duplicates += 1
                self.pending[key].append(handle)
                continue
            self.pending[key] = [handle]
            return arch
        arch = self._unseen()
        self.counters.fallbacks += 1
        # once exhausted the library has every configuration already: it is told nothing more
        handle = None if self.exhausted else self._propose_fixed(self.encoding.encode(arch))
        self.pending.setdefault(arch.key(), []).append(handle)
        return arch

    def tell(self, arch: Architecture, reward: float, info: dict[str, Any]) -> None:
        """A result arrived: tell it to every proposal waiting for this architecture."""
        key = arch.key()
        self.results[key] = (arch, float(reward), dict(info))
        for handle in self.pending.pop(key, []):
            if handle is not None:
                self._report(handle, arch, float(reward), info)

    def learn(self, episodes: int) -> None:
        """``episodes`` times ask, play, tell (one worker); then the agent's own logs."""
        for _ in range(episodes):
            arch = self.ask()
            reward, info = play(self.env, arch)
            self.tell(arch, reward, info)
            self.counters.episodes_done += 1
        self._log()

    # -- helpers -------------------------------------------------------------------------------
    def _unseen(self) -> Architecture:
        for _ in range(_UNSEEN_DRAWS):
            arch = self.space.sample(self.rng)
            if arch.key() not in self.results and arch.key() not in self.pending:
                return arch
        return arch  # a space nearly exhausted: a repeat is a cache hit

    def scalar(self, tag: str, value: float) -> None:
        if self._record is not None:
            self._record(tag, float(value))

    def _log(self) -> None:
        c = self.counters
        self.scalar("nas/repaired_proposals", c.repaired)
        self.scalar("nas/duplicate_proposals", c.duplicates)
        self.scalar("nas/random_fallbacks", c.fallbacks)

    def driver_state(self) -> dict[str, Any]:
        """The driver's part of a checkpoint, JSON-ready (taken between learn calls, so nothing
        is pending): architectures as text, parsed back by the space on load."""
        return {"counters": asdict(self.counters), "rng": self.rng.bit_generator.state, "exhausted": self.exhausted,
                "results": [[a.text(), r, info] for a, r, info in self.results.values()]}

    def load_driver_state(self, state: dict[str, Any]) -> None:
        self.counters = Counters(**state["counters"])
        self.rng.bit_generator.state = state["rng"]
        self.exhausted = bool(state.get("exhausted", False))  # a checkpoint written before the flag: False
        self.results = {}
        for text, reward, info in state["results"]:
            arch = self.space.parse(text)
            self.results[arch.key()] = (arch, float(reward), dict(info))
        self.pending = {}


_SAMPLER_LOCKS = ("_thread_lock",)  # sampler attributes that cannot be pickled; recreated on load


def pickle_study(study: Any, *extra: Any) -> bytes:
    """An Optuna study (and objects that refer to it, e.g. trials in flight) as one pickle: a
    checkpoint of a run folder, which is signed (``nas_gym.storage.trust``) so that only what
    this user's nas-gym wrote is ever unpickled."""
    sampler = study.sampler
    locks = {name: sampler.__dict__.pop(name) for name in _SAMPLER_LOCKS if name in sampler.__dict__}
    try:
        return pickle.dumps((study, sorted(locks), *extra))
    finally:
        sampler.__dict__.update(locks)


def unpickle_study(data: bytes) -> tuple[Any, ...]:
    """What :func:`pickle_study` wrote: the study (its sampler's locks made new), then the extras."""
    loaded = pickle.loads(data)
    # a checkpoint from before the extras were added held the study alone
    study, locks, *extra = loaded if isinstance(loaded, tuple) else (loaded, _SAMPLER_LOCKS)
    for name in locks:
        setattr(study.sampler, name, threading.Lock())
    return (study, *extra)
