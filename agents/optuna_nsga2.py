"""``--agent nsga2``: multi-objective search with Optuna's NSGAIISampler (Deb, Pratap, Agarwal,
Meyarivan, "A fast and elitist multiobjective genetic algorithm: NSGA-II", IEEE TEVC 2002).

Two objectives: maximise validation accuracy, minimise a cost chosen by the ``cost``
hyperparameter: ``params`` (trainable parameters), ``flops`` (multiply-accumulates of one
forward pass) or ``latency`` (the env's ``info["cost"]``, allowed only when the config's reward
cost is ``latency_model``, the deterministic per-layer latency table, or ``latency``, measured
by the training evaluator). The env's reward is not an objective: a cost-aware reward would
count the cost twice. A failed architecture's accuracy is the env's failure reward.

Each generation of ``population_size`` trials is made by non-dominated sorting and crowding
distance over the trials told so far, then uniform crossover and per-decision mutation of the
categorical decisions ``d0 ..`` (the encoding, its repair and duplicates: ``nas_gym.agents.optuna_proposals``).

At the end of every ``learn`` the agent reports the Pareto front of the distinct architectures
evaluated so far and its hypervolume: as ``nas/pareto_size`` and ``nas/hypervolume`` through
the search's recorder, and as ``pareto.json`` in the run folder. The hypervolume is the area,
in (cost, accuracy), that the front dominates above accuracy 0 and below ``reference_cost``; the
default reference, 1.1 times the largest cost evaluated, moves with the run, so hypervolumes are
comparable across runs only when ``reference_cost`` is set.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from nas_gym.agents.base import AgentError
from nas_gym.agents.optuna_agents import OptunaAgent
from nas_gym.storage.atomic import atomic_write_text

COSTS = ("params", "flops", "latency")
LATENCY_REWARD_COSTS = ("latency_model", "latency")
PARETO_FILE = "pareto.json"
DEFAULT_REFERENCE_MARGIN = 1.1  # the default reference cost: this times the largest cost evaluated


@dataclass(frozen=True)
class NSGA2Args:
    """:param population_size: trials per generation (Optuna's default, 50, would leave a
        100-evaluation search two generations).
    :param crossover_prob: probability that a child is a crossover of two parents.
    :param swapping_prob: per-decision probability that uniform crossover takes the second parent's.
    :param mutation_prob: per-decision probability of a random value; None: 1 / number of decisions.
    :param cost: the second objective, minimised: ``params``, ``flops`` or ``latency``.
    :param reference_cost: the hypervolume's reference cost; None: 1.1 x the largest cost seen.
    :param duplicate_draws: duplicate proposals in a row before a uniformly drawn new
        architecture is evaluated instead."""

    population_size: int = 20
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5
    mutation_prob: float | None = None
    cost: str = "params"
    reference_cost: float | None = None
    duplicate_draws: int = 10

    def __post_init__(self) -> None:
        if self.population_size < 2:
            raise AgentError(f"nsga2: population_size must be >= 2, got {self.population_size}")
        for name in ("crossover_prob", "swapping_prob", "mutation_prob"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise AgentError(f"nsga2: {name} must be in [0, 1], got {value}")
        if self.cost not in COSTS:
            raise AgentError(f"nsga2: cost must be one of {', '.join(COSTS)}, got {self.cost!r}")
        if self.reference_cost is not None and not self.reference_cost > 0:
            raise AgentError(f"nsga2: reference_cost must be > 0, got {self.reference_cost}")
        if self.duplicate_draws < 1:
            raise AgentError(f"nsga2: duplicate_draws must be >= 1, got {self.duplicate_draws}")


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (accuracy, cost) no other point dominates (at least as accurate and
    as cheap, better in one), sorted by cost; of equal points, the first."""
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0], i))
    front, best_acc = [], -math.inf
    for i in order:  # by cost ascending: a point is on the front iff more accurate than all cheaper ones
        if points[i][0] > best_acc:
            front.append(i)
            best_acc = points[i][0]
    return front


def hypervolume(points: Sequence[tuple[float, float]], reference_cost: float, reference_acc: float = 0.0) -> float:
    """Area of the (cost, accuracy) region the points dominate, bounded by ``reference_cost``
    above and ``reference_acc`` below."""
    front = [points[i] for i in pareto_front(points)]
    area = 0.0
    for k, (acc, cost) in enumerate(front):
        right = min(front[k + 1][1] if k + 1 < len(front) else reference_cost, reference_cost)
        if acc > reference_acc and right > cost:
            area += (right - cost) * (acc - reference_acc)
    return area


class NSGA2(OptunaAgent):
    """``--agent nsga2``: Optuna's NSGAIISampler on (validation accuracy, cost)."""

    NAME = "nsga2"
    Args = NSGA2Args
    directions = ["maximize", "minimize"]

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        super().__init__(env, seed=seed, hparams=hparams, logdir=logdir)
        config = self.context.config
        reward_cost = config.reward.cost if config is not None else None
        if self.args.cost == "latency" and reward_cost not in LATENCY_REWARD_COSTS:
            raise AgentError(f"nsga2: cost 'latency' reads the config's latency (reward.cost latency_model or "
                             f"latency), but its reward.cost is {reward_cost!r}; set reward.cost: latency_model "
                             "or give nsga2 cost params or flops")

    def make_sampler(self, seed: int) -> Any:
        a = self.args
        return self.optuna.samplers.NSGAIISampler(seed=seed, population_size=a.population_size,
                                                  crossover_prob=a.crossover_prob, swapping_prob=a.swapping_prob,
                                                  mutation_prob=a.mutation_prob)

    def point(self, reward: float, info: dict[str, Any]) -> tuple[float, float]:
        """(accuracy, cost) of a result; a failure's accuracy is its reward (the failure reward)."""
        acc = float(info.get("val_acc", math.nan))
        if not math.isfinite(acc) or info.get("status", "ok") != "ok":
            acc = float(reward)
        cost = info["cost"] if self.args.cost == "latency" else info[self.args.cost]
        return acc, float(cost)

    def objective(self, reward: float, info: dict[str, Any]) -> list[float]:
        return list(self.point(reward, info))

    def pareto(self) -> tuple[list[dict[str, Any]], float, float]:
        """The front of the distinct architectures evaluated so far (cheapest first), its
        hypervolume and the reference cost it was measured against."""
        entries = [(arch.text(), *self.point(reward, info)) for arch, reward, info in self.results.values()]
        points = [(acc, cost) for _, acc, cost in entries]
        if not points:
            return [], 0.0, float(self.args.reference_cost or 0.0)
        ref = self.args.reference_cost or DEFAULT_REFERENCE_MARGIN * max(cost for _, cost in points)
        front = [{"arch": entries[i][0], "val_acc": entries[i][1], "cost": entries[i][2]} for i in pareto_front(points)]
        return front, hypervolume(points, ref), float(ref)

    def learn(self, episodes: int) -> None:
        super().learn(episodes)
        front, volume, ref = self.pareto()
        self.scalar("nas/pareto_size", len(front))
        self.scalar("nas/hypervolume", volume)
        if self.logdir is not None:
            atomic_write_text(self.logdir / PARETO_FILE, json.dumps(
                {"objectives": ["val_acc (max)", f"{self.args.cost} (min)"], "evaluated": len(self.results),
                 "reference": {"val_acc": 0.0, "cost": ref}, "hypervolume": volume, "front": front}, indent=1) + "\n")
