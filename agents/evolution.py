"""Regularized evolution (Real et al., 2019): tournament selection, mutation, removal of the oldest.

Ageing (removing the oldest, not the worst) keeps an architecture that was lucky once from
ruling the population forever, which matters when accuracies are noisy. Defaults follow the
NAS-Bench-201 scripts (population 10, sample 3); NNI uses 100 / 25 for long budgets.

Asynchronous ask/tell (``agents.ask_tell``), as Real et al. ran it on many workers: a freed
worker gets a child of a tournament sampled from the population of results that have arrived;
while fewer than ``population`` have arrived, it gets a random architecture (so K workers draw
up to K - 1 more random ones than one worker does). With one worker this is the serial algorithm.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from nas_gym.agents.base import AgentError, BaseAgent, make_hparams, play
from nas_gym.spaces.base import Architecture
from nas_gym.storage.atomic import atomic_write_text


@dataclass(frozen=True)
class EvolutionArgs:
    """:param population: individuals kept alive; the first ``population`` episodes are random.
    :param sample: tournament size: the best of ``sample`` random individuals is the parent.
    """

    population: int = 10
    sample: int = 3


class RegularizedEvolution(BaseAgent):
    """:param env: a NasGym env. :param seed: seeds sampling and mutation. :param hparams: EvolutionArgs fields."""

    synchronous = False

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        self.env = env
        self.args = make_hparams(EvolutionArgs, hparams)
        if not 1 <= self.args.sample <= self.args.population:
            raise AgentError(f"evolution: need 1 <= sample <= population, got sample {self.args.sample}, "
                             f"population {self.args.population}")
        self.rng = np.random.default_rng(seed)
        self.population: deque[tuple[Architecture, float]] = deque()
        self.episodes_done = 0

    def ask(self) -> Architecture:
        """A random architecture until the population is full, then a mutated tournament winner."""
        space = self.context.space
        if len(self.population) < self.args.population:
            return space.sample(self.rng)
        picks = self.rng.choice(len(self.population), size=self.args.sample, replace=False)
        parent = max((self.population[int(i)] for i in picks), key=lambda ind: ind[1])[0]
        return space.mutate(parent, self.rng)

    def learn(self, episodes: int) -> None:
        context = self.context
        batch = context.batch_size
        done = 0
        while done < episodes:
            # with N workers, N children are proposed from the same population, as in the
            # asynchronous evolution of Real et al.; with one worker this is the serial algorithm
            children = [self.ask() for _ in range(min(batch, episodes - done))]
            if len(children) > 1:
                context.prefetch(children)
            for child in children:
                self.tell(child, *play(self.env, child))
            done += len(children)

    def tell(self, arch: Architecture, reward: float, info: dict[str, Any]) -> None:
        """The child joins the population; the oldest leaves once it is over size (ageing)."""
        self.population.append((arch, reward))
        if len(self.population) > self.args.population:
            self.population.popleft()
        self.episodes_done += 1

    def save(self, path: str | Path) -> None:
        state = {"population": [(a.text(), r) for a, r in self.population], "episodes_done": self.episodes_done,
                 "rng": self.rng.bit_generator.state}
        atomic_write_text(path, json.dumps(state))

    def load(self, path: str | Path) -> None:
        state = json.loads(Path(path).read_text())
        space = self.context.space
        self.population = deque((space.parse(a), float(r)) for a, r in state["population"])
        self.episodes_done = int(state["episodes_done"])
        self.rng.bit_generator.state = state["rng"]
