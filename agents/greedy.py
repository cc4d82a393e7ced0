"""Greedy search: fix one decision at a time, trying every allowed action and keeping the best.

The simplest strategy that uses what it has seen. It keeps an incumbent, a complete
architecture, and improves its decisions in episode order: at step ``t`` it tries every action
the space allows after the incumbent's first ``t`` actions, each followed by the incumbent's
remaining actions, and keeps the best (the incumbent wins ties). On the layer chain, from
nothing, that is textbook greedy growth: the best one-layer chain, then the best layer to
append to it or ``stop``, and so on until no extension improves (``stop`` wins) or the budget
ends.

Rules that make it well defined on any space:

- A completion: an action of the kept suffix that the space forbids after the new prefix is
  dropped, and an episode still unfinished when the suffix runs out is completed with the
  highest-numbered allowed action at each step (the layer chain's ``stop``, so a new layer is
  scored as the last one; the cell's ``avgpool3``, a parameter-free op that keeps every edge
  live, so the first edges' choices already change the score).
- The first incumbent is that completion of nothing. When a pass reaches the step that
  completed the incumbent, the search restarts from an architecture drawn uniformly
  (``space.sample``), so a long budget keeps finding new local optima.
- Each architecture is played (and charged) once; known scores are reused. If everything
  reachable is known (a tiny space), the best architecture is played again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from nas_gym.agents.base import BaseAgent, make_hparams, play
from nas_gym.spaces.base import Architecture, play_actions
from nas_gym.storage.atomic import atomic_write_text

# Passes in a row that find nothing new before the best architecture is played again.
_IDLE_PASSES = 50


@dataclass(frozen=True)
class GreedyArgs:
    """Greedy search has no hyperparameters; the seed only draws the restarts."""


class Greedy(BaseAgent):
    """:param env: a NasGym env. :param seed: seeds the restarts. :param hparams: none."""

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        self.env = env
        self.args = make_hparams(GreedyArgs, hparams)
        self.space = self.context.space
        self.rng = np.random.default_rng(seed)
        self.known: dict[str, float] = {}  # architecture key -> reward
        self.incumbent: list[int] | None = None  # actions of the incumbent, the completing one last
        self.t = 0  # the decision being improved
        self.episodes_done = 0
        self.best: str | None = None  # text of the best architecture played
        self._idle = 0

    # -- architectures from actions --------------------------------------------------------
    def complete(self, prefix: list[int], suffix: list[int]) -> list[int]:
        """``prefix`` (allowed actions) followed by the allowed actions of ``suffix``, then the
        highest-numbered allowed action until the episode ends."""
        partial, done = play_actions(self.space, prefix)
        actions = list(prefix)
        pending = list(suffix)
        while not done:
            mask = self.space.mask(partial)
            while pending and not mask[pending[0]]:
                pending.pop(0)
            action = pending.pop(0) if pending else int(np.flatnonzero(mask)[-1])
            partial, done = self.space.step(partial, action)
            actions.append(action)
        return actions

    def _arch(self, actions: list[int]) -> Architecture:
        return play_actions(self.space, actions)[0]

    def candidates(self) -> list[list[int]]:
        """The incumbent with each allowed action at step ``t`` (itself among them)."""
        assert self.incumbent is not None
        prefix, suffix = self.incumbent[: self.t], self.incumbent[self.t + 1 :]
        partial, _ = play_actions(self.space, prefix)
        return [self.complete(prefix + [a], suffix) for a in map(int, np.flatnonzero(self.space.mask(partial)))]

    # -- the search --------------------------------------------------------------------------
    def _restart(self) -> None:
        first = not self.known and self.incumbent is None
        self.incumbent = self.complete([], []) if first else self.space.actions_of(self.space.sample(self.rng))
        self.t = 0

    def _advance(self, candidates: list[list[int]]) -> None:
        """Every candidate is known: keep the best (ties: the incumbent), move to the next step."""
        assert self.incumbent is not None
        best = self.incumbent
        for actions in candidates:
            if self.known[self._arch(actions).key()] > self.known[self._arch(best).key()]:
                best = actions
        self.incumbent, self.t = best, self.t + 1
        if self.t >= len(self.incumbent):  # past the step that completed it: a pass is over
            self.incumbent = None

    def _play(self, arch: Architecture) -> None:
        reward, _ = play(self.env, arch)
        if self.best is None or reward > self.known[self.space.parse(self.best).key()]:
            self.best = arch.text()
        self.known[arch.key()] = reward
        self.episodes_done += 1
        self._idle = 0

    def learn(self, episodes: int) -> None:
        context = self.context
        batch = max(1, context.batch_size)
        done = 0
        while done < episodes:
            if self.incumbent is None:
                self._restart()
            candidates = self.candidates()
            unknown: dict[str, Architecture] = {}
            for actions in candidates:
                arch = self._arch(actions)
                if arch.key() not in self.known:
                    unknown.setdefault(arch.key(), arch)
            if unknown:
                archs = list(unknown.values())[: min(batch, episodes - done)]
                if len(archs) > 1:
                    context.prefetch(archs)  # trained together by the evaluator's workers
                for arch in archs:
                    self._play(arch)
                done += len(archs)
                continue
            self._advance(candidates)
            self._idle += self.incumbent is None
            if self._idle > _IDLE_PASSES and self.best is not None:  # nothing new within reach
                self._play(self.space.parse(self.best))
                done += 1

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        state = {"known": self.known, "incumbent": self.incumbent, "t": self.t, "episodes_done": self.episodes_done,
                 "best": self.best, "idle": self._idle, "rng": self.rng.bit_generator.state}
        atomic_write_text(path, json.dumps(state))

    def load(self, path: str | Path) -> None:
        state = json.loads(Path(path).read_text())
        self.known = {k: float(v) for k, v in state["known"].items()}
        self.incumbent = None if state["incumbent"] is None else [int(a) for a in state["incumbent"]]
        self.t, self.episodes_done, self._idle = int(state["t"]), int(state["episodes_done"]), int(state["idle"])
        self.best = state["best"]
        self.rng.bit_generator.state = state["rng"]
