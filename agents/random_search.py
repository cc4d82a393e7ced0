"""Random search: architectures drawn uniformly from all valid ones.

The baseline every controller must beat at equal budget. Uniform over architectures, not over
actions: a uniform choice at each step would favour short chains (see ``SearchSpace.sample``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from nas_gym.agents.base import BaseAgent, make_hparams, play
from nas_gym.spaces.base import Architecture
from nas_gym.storage.atomic import atomic_write_text

QUEUE_PER_WORKER = 4  # architectures handed to the evaluator at a time, per worker


@dataclass(frozen=True)
class RandomSearchArgs:
    """Random search has no hyperparameters; the class exists so every agent looks alike."""


class RandomSearch(BaseAgent):
    """:param env: a NasGym env. :param seed: seeds the sampler. :param hparams: none.

    Asynchronous ask/tell (``agents.ask_tell``): a draw needs no result, so every freed worker
    gets the next draw at once, and K workers see the same architectures as one.
    """

    synchronous = False

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        self.env = env
        self.args = make_hparams(RandomSearchArgs, hparams)
        self.rng = np.random.default_rng(seed)
        self.episodes_done = 0

    def learn(self, episodes: int) -> None:
        context = self.context
        # Draws do not depend on results, so a batch can be longer than the workers: each
        # worker takes the next architecture when it finishes one, instead of idling until the
        # slowest of a batch of ``workers`` is done. The draws, and so the results, are the
        # same for every batch length.
        batch = context.batch_size * QUEUE_PER_WORKER if context.batch_size > 1 else 1
        done = 0
        while done < episodes:
            archs = [self.ask() for _ in range(min(batch, episodes - done))]
            if len(archs) > 1:
                context.prefetch(archs)  # trained together by the evaluator's workers
            for arch in archs:
                self.tell(arch, *play(self.env, arch))
            done += len(archs)

    def ask(self) -> Architecture:
        return self.context.space.sample(self.rng)

    def tell(self, arch: Architecture, reward: float, info: dict[str, Any]) -> None:
        self.episodes_done += 1

    def save(self, path: str | Path) -> None:
        """The generator's state is all there is: a loaded agent draws the architectures an
        uninterrupted one would have drawn next."""
        atomic_write_text(path, json.dumps({"episodes_done": self.episodes_done, "rng": self.rng.bit_generator.state}))

    def load(self, path: str | Path) -> None:
        state = json.loads(Path(path).read_text())
        self.episodes_done = int(state["episodes_done"])
        self.rng.bit_generator.state = state["rng"]
