"""Asynchronous successive halving, ASHA (Li et al., "A System for Massively Parallel
Hyperparameter Tuning", MLSys 2020).

Synchronous successive halving makes every worker wait at a rung until its slowest member is in.
ASHA never waits: whenever a worker is free it promotes an architecture that is in the top
``1/eta`` of the results its rung has so far and was not promoted yet (highest rung first), and
otherwise draws a new one at the lowest rung. Early promotions may be mistakes a full rung would
not make; the paper shows that the lost precision is small and the idle workers it saves are
many. With one worker it is a sequential algorithm that already promotes as soon as a rung holds
``eta`` results.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from nas_gym.agents.base import AgentError
from nas_gym.agents.fidelity import FidelityAgent, curve_epochs, file_hparams, rung_epochs
from nas_gym.spaces.base import Architecture

DRAW_TRIES = 50  # draws before a repeat is accepted (a space nearly exhausted)


@dataclass(frozen=True)
class AshaArgs:
    """:param eta: the reduction factor: a rung promotes its top ``1/eta``.
    :param min_epochs: the lowest rung's epochs.
    :param max_epochs: the top rung's epochs; 0: the table's last epoch.
    """

    eta: float = 3
    min_epochs: int = 1
    max_epochs: int = 0


class Asha(FidelityAgent):
    """ASHA over the env: every job is one episode at its rung's epochs (``nas_gym.agents.fidelity``).

    :param env: a NasGym env whose evaluator answers at chosen epochs (a table with curves).
    :param seed: seeds the draws. :param hparams: AshaArgs fields over ``envs_config/agents/asha.yaml``.
    :raises nas_gym.envs.nas_env.FidelityError: the env's table has no learning curves.
    """

    synchronous = False
    name = "asha"

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        super().__init__(env)
        top = curve_epochs(env, self.name)
        self.args = file_hparams(AshaArgs, self.name, env, hparams)
        if self.args.max_epochs > top:
            raise AgentError(f"{self.name}: max_epochs={self.args.max_epochs} but the table's curves have {top} epochs; "
                             "choose at most that, or 0 for all")
        self.rungs = rung_epochs(self.args.min_epochs, self.args.max_epochs or top, self.args.eta)
        self.rng = np.random.default_rng(seed)
        # per rung: key -> (architecture, reward) of the results in so far, in arrival order
        self.results: list[dict[str, tuple[Architecture, float]]] = [{} for _ in self.rungs]
        self.promoted: list[set[str]] = [set() for _ in self.rungs]
        self.drawn: set[str] = set()

    def _promotable(self, k: int) -> Architecture | None:
        """The best of rung ``k``'s top ``1/eta`` not promoted yet, or None."""
        done = self.results[k]
        n = int(len(done) // self.args.eta)
        if n == 0:
            return None
        ranked = sorted(done.values(), key=lambda ar: -ar[1])  # stable: ties go to the earlier result
        return next((a for a, _ in ranked[:n] if a.key() not in self.promoted[k]), None)

    def _draw(self) -> Architecture:
        space = self.context.space
        for _ in range(DRAW_TRIES):
            arch = space.sample(self.rng)
            if arch.key() not in self.drawn:
                break
        self.drawn.add(arch.key())
        return arch

    def ask(self) -> Architecture:
        for k in reversed(range(len(self.rungs) - 1)):
            arch = self._promotable(k)
            if arch is not None:
                self.promoted[k].add(arch.key())
                self.asked_epochs = self.rungs[k + 1]
                return arch
        self.asked_epochs = self.rungs[0]
        return self._draw()

    def tell(self, arch: Architecture, reward: float, info: dict[str, Any]) -> None:
        self.results[self.rungs.index(int(info["epochs"]))][arch.key()] = (arch, reward)

    def state(self) -> dict[str, Any]:
        return {**super().state(), "drawn": sorted(self.drawn), "promoted": [sorted(p) for p in self.promoted],
                "results": [[[a.text(), r] for a, r in rung.values()] for rung in self.results]}

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        space = self.context.space
        self.drawn = {str(k) for k in state["drawn"]}
        self.promoted = [{str(k) for k in p} for p in state["promoted"]]
        self.results = [{a.key(): (a, float(r)) for a, r in ((space.parse(t), r) for t, r in rung)}
                        for rung in state["results"]]

    def save(self, path: str | Path) -> None:
        self.save_json(path)

    def load(self, path: str | Path) -> None:
        self.load_json(path)
