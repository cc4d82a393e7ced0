"""Random search: architectures drawn uniformly from all valid ones.

The baseline every controller must beat at equal budget. Uniform over architectures, not over
actions: a uniform choice at each step would favour short chains (see ``SearchSpace.sample``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.base import make_hparams, play


@dataclass(frozen=True)
class RandomSearchArgs:
    """Random search has no hyperparameters; the class exists so every agent looks alike."""


class RandomSearch:
    """:param env: a NasGym env. :param seed: seeds the sampler. :param hparams: none."""

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        self.env = env
        self.args = make_hparams(RandomSearchArgs, hparams)
        self.rng = np.random.default_rng(seed)

    def learn(self, episodes: int) -> None:
        space = self.env.unwrapped.space
        for _ in range(episodes):
            play(self.env, space.sample(self.rng))
