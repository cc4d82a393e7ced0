"""Local search (White, Nolen, Zela, Hutter, "Exploring the Loss Landscape in Neural Architecture
Search", UAI 2021): hill climbing over the space's neighbourhood, restarted at random at a local
optimum. They found this simple method competitive with or better than the state of the art on
the NAS-Bench tables, which makes it the baseline a new searcher should beat after random search.

The walk: start at a random architecture; evaluate the current best's neighbours (the space's
``neighbours``: every architecture one edit away) in random order; at the first that scores
higher, move there and start over on its neighbours; when every neighbour has been evaluated and
none is better, the current architecture is a local optimum: restart at a random architecture
not evaluated yet. Architectures evaluated before are remembered and never replayed, so every
episode is a new evaluation. It works on any space that defines ``neighbours``.

Asynchronous ask/tell (``agents.ask_tell``) for K simulated workers: a freed worker gets the
climb's next untried neighbour; when there is none (the start's results, or a climb's last
neighbours, have not all arrived) it gets a random architecture not evaluated yet. A random
one arriving while no climb has started counts towards the start; one arriving at a local
optimum (no neighbour left to try or still out) is the restart; any other is only remembered.
A neighbour arriving with a higher reward than the climb's best moves the climb there. With
one worker nothing is ever out when a worker asks, and this is the serial walk above.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from nas_gym.agents.base import AgentError, BaseAgent, make_hparams, play
from nas_gym.spaces.base import Architecture
from nas_gym.storage.atomic import atomic_write_text

_RESTART_DRAWS = 1000  # random draws to find an unseen restart before accepting a seen one


@dataclass(frozen=True)
class LocalSearchArgs:
    """:param initial: random architectures evaluated before the first climb, which starts from
        the best of them (White et al. use 1 on the NAS-Bench tables; more trades evaluations
        for a better start)."""

    initial: int = 1

    def __post_init__(self) -> None:
        if self.initial < 1:
            raise AgentError(f"local search: initial must be at least 1, got {self.initial}")


class LocalSearch(BaseAgent):
    """:param env: a NasGym env. :param seed: seeds restarts and the order of neighbours.
    :param hparams: LocalSearchArgs fields."""

    synchronous = False

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        self.env = env
        self.args = make_hparams(LocalSearchArgs, hparams)
        self.rng = np.random.default_rng(seed)
        self.scores: dict[str, float] = {}  # key -> reward of every architecture evaluated
        self.current: tuple[Architecture, float] | None = None  # the climb's best so far
        self.queue: list[Architecture] = []  # its neighbours still to try, in order
        self.initial: list[tuple[Architecture, float]] = []  # the random start, until the first climb
        self.out: dict[str, str] = {}  # key -> "random" or "neighbour": asked, result not arrived yet
        self.episodes_done = 0
        self.restarts = 0

    def _known(self, key: str) -> bool:
        return key in self.scores or key in self.out

    def _unseen_random(self) -> Architecture:
        space = self.context.space
        arch = space.sample(self.rng)
        for _ in range(_RESTART_DRAWS):
            if not self._known(arch.key()):
                return arch
            arch = space.sample(self.rng)
        return arch  # a space nearly exhausted: a repeat costs nothing (cache hit)

    def _start_climb(self, arch: Architecture, reward: float) -> None:
        self.current = (arch, reward)
        neighbours = [n for n in self.context.space.neighbours(arch) if n.key() not in self.scores]
        order = self.rng.permutation(len(neighbours))
        self.queue = [neighbours[int(i)] for i in order]

    def _at_optimum(self) -> bool:
        """No neighbour of the climb left to try or still out: nothing can move it any more."""
        return not self.queue and "neighbour" not in self.out.values()

    def ask(self) -> Architecture:
        """The climb's next untried neighbour, else a random architecture not evaluated yet."""
        if self.current is not None:
            self.queue = [n for n in self.queue if not self._known(n.key())]
            if self.queue:
                arch = self.queue.pop(0)
                self.out[arch.key()] = "neighbour"
                return arch
        arch = self._unseen_random()
        self.out[arch.key()] = "random"
        return arch

    def tell(self, arch: Architecture, reward: float, info: dict[str, Any]) -> None:
        key = arch.key()
        kind = self.out.pop(key, "random")
        self.scores[key] = reward
        self.episodes_done += 1
        if self.current is None:
            self.initial.append((arch, reward))
            if len(self.initial) >= self.args.initial:
                self._start_climb(*max(self.initial, key=lambda pair: pair[1]))
        elif kind == "neighbour":
            if reward > self.current[1]:
                self._start_climb(arch, reward)
        elif self._at_optimum():  # a local optimum: restart from this random architecture
            self.queue = []
            self.restarts += 1
            self._start_climb(arch, reward)

    def step(self) -> None:
        """One evaluation of the walk."""
        arch = self.ask()
        self.tell(arch, *play(self.env, arch))

    def learn(self, episodes: int) -> None:
        for _ in range(episodes):
            self.step()

    def save(self, path: str | Path) -> None:
        state = {"scores": self.scores, "episodes_done": self.episodes_done, "restarts": self.restarts,
                 "current": None if self.current is None else [self.current[0].text(), self.current[1]],
                 "queue": [a.text() for a in self.queue], "initial": [[a.text(), r] for a, r in self.initial],
                 "out": self.out,
                 "rng": self.rng.bit_generator.state}
        atomic_write_text(path, json.dumps(state))

    def load(self, path: str | Path) -> None:
        state = json.loads(Path(path).read_text())
        space = self.context.space
        self.scores = {str(k): float(v) for k, v in state["scores"].items()}
        self.episodes_done, self.restarts = int(state["episodes_done"]), int(state["restarts"])
        self.current = None if state["current"] is None else (space.parse(state["current"][0]),
                                                              float(state["current"][1]))
        self.queue = [space.parse(t) for t in state["queue"]]
        self.initial = [(space.parse(t), float(r)) for t, r in state["initial"]]
        self.out = {str(k): str(v) for k, v in state.get("out", {}).items()}  # saved before ask/tell: none out
        self.rng.bit_generator.state = state["rng"]
