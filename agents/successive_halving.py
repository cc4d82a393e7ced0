"""Successive halving (Jamieson & Talwalkar 2016; the inner loop of Hyperband): race a fixed set
of architectures up the training budgets.

Evaluate all at the lowest budget, keep the best ``1/eta``, re-evaluate them at ``eta`` times the
budget, and so on up to the highest. A short run ranks architectures roughly as a long one does
(see ``nas_gym.evaluators.multi_fidelity``), so most of the compute goes to the few that matter.

Two forms: :class:`SuccessiveHalving`, a library that races a given set of architectures by
calling one evaluator per budget directly (each charges its own ``stats``); and
:class:`SuccessiveHalvingAgent` (``--agent sh``), which draws its architectures itself and plays
every evaluation through the env at the rung's epochs (``nas_gym.agents.fidelity``), so it is charged and
recorded like every other agent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from nas_gym.agents.base import AgentError
from nas_gym.agents.fidelity import FidelityAgent, curve_epochs, file_hparams, rung_epochs
from nas_gym.config import Config, ConfigError
from nas_gym.evaluators import make_evaluator
from nas_gym.evaluators.base import EvalResult, Evaluator, FidelityEvaluator
from nas_gym.evaluators.multi_fidelity import rank_score, with_fidelity
from nas_gym.spaces.base import Architecture

EvaluatorFactory = Callable[[float], Evaluator]


def training_factory(config: Config, knob: str = "epochs", kind: str = "train", **kwargs: Any) -> EvaluatorFactory:
    """A factory for ``SuccessiveHalving``: budget -> ``make_evaluator(with_fidelity(config, knob=budget), kind)``.

    :param knob: ``epochs`` or ``train_fraction``.
    :param kwargs: passed to ``make_evaluator`` (e.g. one ``cache`` shared by all fidelities:
        their contexts differ, so their results never mix).
    """
    if knob not in ("epochs", "train_fraction"):
        raise ConfigError(f"fidelity knob {knob!r} is not one of epochs, train_fraction")

    def make(budget: float) -> Evaluator:
        return make_evaluator(with_fidelity(config, **{knob: budget}), kind, **kwargs)

    return make


class _AtEpochs:
    """One fidelity of a :class:`FidelityEvaluator` (a table with learning curves): answers at
    ``epochs`` and charges the shared evaluator, which pays only for epochs of an architecture
    not paid for yet, as if its training continued from the last rung."""

    def __init__(self, evaluator: FidelityEvaluator, epochs: int) -> None:
        self.inner, self.epochs = evaluator, epochs
        self.space, self.num_classes, self.stats = evaluator.space, evaluator.num_classes, evaluator.stats

    def evaluate_many(self, archs: Sequence[Architecture]) -> list[EvalResult]:
        return [self.inner.evaluate_at(a, self.epochs) for a in archs]


def table_factory(evaluator: Evaluator) -> EvaluatorFactory:
    """A factory for ``SuccessiveHalving`` over one table with learning curves: budget ->
    answers after that many epochs (rounded to a whole epoch, at least 1), all charged to
    ``evaluator``, so a rung pays only for the epochs it adds.

    :raises ConfigError: the evaluator cannot answer at a chosen epoch.
    """
    if not isinstance(evaluator, FidelityEvaluator) or evaluator.unwrapped is not evaluator:
        raise ConfigError(f"successive halving on a table needs an evaluator with learning curves, not {evaluator!r}")

    def make(budget: float) -> Evaluator:
        return _AtEpochs(evaluator, max(1, round(budget)))  # type: ignore[return-value]

    return make


@dataclass(frozen=True)
class Rung:
    """One round of successive halving: the budget and what was evaluated at it."""

    budget: float
    results: tuple[tuple[Architecture, EvalResult], ...]


@dataclass(frozen=True)
class HalvingResult:
    """:param ranking: every architecture with its result at the highest budget it reached, best
        first: those that reached a higher rung rank above those eliminated earlier (their scores
        are not comparable across budgets), then by validation accuracy.
    :param rungs: the rounds, lowest budget first.
    :param train_seconds: what all evaluators charged, cache hits free.
    """

    ranking: tuple[tuple[Architecture, EvalResult], ...]
    rungs: tuple[Rung, ...]
    train_seconds: float

    @property
    def best(self) -> tuple[Architecture, EvalResult]:
        return self.ranking[0]


class SuccessiveHalving:
    """Successive halving over a fixed set of architectures.

    Budgets run from ``max_budget`` down by factors of ``eta`` while they stay >= ``min_budget``
    (27, 9, 3, 1 for eta 3 and budgets 1-27), so the top rung is exactly the budget one cares
    about. Each rung keeps ``max(1, n // eta)`` architectures; the survivors are re-evaluated
    up to the top rung even once a single one is left, so the winner's reported score is
    always at the highest fidelity.

    :param factory: budget -> evaluator at that fidelity (e.g. ``training_factory``); called
        once per budget, the evaluators are kept in ``self.evaluators``.
    :param eta: the halving rate (> 1).
    :param min_budget: the lowest budget (epochs, or a training fraction).
    :param max_budget: the highest budget.
    """

    def __init__(self, factory: EvaluatorFactory, eta: float = 3, min_budget: float = 1, max_budget: float = 27) -> None:
        if eta <= 1:
            raise ValueError(f"successive halving: eta must be > 1, got {eta}")
        if not 0 < min_budget <= max_budget:
            raise ValueError(f"successive halving: need 0 < min_budget <= max_budget, got {min_budget}, {max_budget}")
        self.factory, self.eta = factory, eta
        self.min_budget, self.max_budget = min_budget, max_budget
        self.evaluators: dict[float, Evaluator] = {}

    @property
    def budgets(self) -> list[float]:
        top = math.floor(math.log(self.max_budget / self.min_budget) / math.log(self.eta) + 1e-9)
        return [self.max_budget / self.eta ** (top - k) for k in range(top + 1)]

    def evaluator(self, budget: float) -> Evaluator:
        if budget not in self.evaluators:
            self.evaluators[budget] = self.factory(budget)
        return self.evaluators[budget]

    def run(self, archs: Sequence[Architecture | str]) -> HalvingResult:
        """Race ``archs`` (repeats dropped: texts parsed, equal keys merged) up the budgets."""
        budgets = self.budgets
        space = self.evaluator(budgets[0]).space
        unique: dict[str, Architecture] = {}
        for arch in archs:
            arch = space.parse(arch) if isinstance(arch, str) else arch
            unique.setdefault(arch.key(), arch)
        survivors = list(unique.values())
        if not survivors:
            raise ValueError("successive halving: no architectures to race")
        reached: dict[Architecture, tuple[int, EvalResult]] = {}
        rungs = []
        for k, budget in enumerate(budgets):
            results = self.evaluator(budget).evaluate_many(survivors)
            rungs.append(Rung(budget, tuple(zip(survivors, results, strict=True))))
            reached.update((a, (k, r)) for a, r in zip(survivors, results, strict=True))
            if k + 1 < len(budgets):
                ranked = sorted(zip(survivors, results, strict=True), key=lambda ar: rank_score(ar[1]), reverse=True)
                survivors = [a for a, _ in ranked[: max(1, int(len(survivors) // self.eta))]]
        order = sorted(reached, key=lambda a: (reached[a][0], rank_score(reached[a][1])), reverse=True)
        stats = {id(ev.stats): ev.stats for ev in self.evaluators.values()}  # fidelities may share one evaluator
        seconds = sum(st.train_seconds for st in stats.values())
        return HalvingResult(tuple((a, reached[a][1]) for a in order), tuple(rungs), seconds)


# -- the agent: synchronous successive halving through the env -------------------------------
@dataclass(frozen=True)
class SuccessiveHalvingArgs:
    """:param eta: the halving rate: each rung keeps the best ``1/eta`` (at least one).
    :param min_epochs: the lowest rung's epochs.
    :param max_epochs: the top rung's epochs, whose result counts; 0: the table's last epoch.
    :param archs: architectures drawn (distinct, uniformly) for each bracket's lowest rung.
    """

    eta: float = 3
    min_epochs: int = 1
    max_epochs: int = 0
    archs: int = 27


class _Bracket:
    """One run of successive halving: its members at the current rung, handed out one by one,
    promoted together once all of the rung's results are in (synchronous)."""

    def __init__(self, archs: list[Architecture], rungs: list[int], eta: float) -> None:
        self.members, self.rungs, self.eta = archs, rungs, eta
        self.rung, self.handed = 0, 0
        self.rewards: dict[str, float] = {}

    @property
    def finished(self) -> bool:
        return self.rung == len(self.rungs) - 1 and len(self.rewards) == len(self.members)

    def job(self) -> tuple[Architecture, int] | None:
        """The next member to evaluate at this rung, or None while the rung waits for results."""
        if self.handed == len(self.members):
            return None
        self.handed += 1
        return self.members[self.handed - 1], self.rungs[self.rung]

    def state(self) -> dict[str, Any]:
        return {"members": [a.text() for a in self.members], "rung": self.rung, "handed": self.handed,
                "rewards": self.rewards}

    @classmethod
    def restored(cls, state: dict[str, Any], parse: Callable[[str], Architecture], rungs: list[int], eta: float) -> _Bracket:
        bracket = cls([parse(t) for t in state["members"]], rungs, eta)
        bracket.rung, bracket.handed = int(state["rung"]), int(state["handed"])
        bracket.rewards = {str(k): float(v) for k, v in state["rewards"].items()}
        return bracket

    def told(self, arch: Architecture, reward: float) -> None:
        self.rewards[arch.key()] = reward
        if len(self.rewards) < len(self.members) or self.rung == len(self.rungs) - 1:
            return
        # a stable sort: ties keep the order the members were drawn in
        ranked = sorted(self.members, key=lambda a: -self.rewards[a.key()])
        self.members = ranked[: max(1, int(len(ranked) // self.eta))]
        self.rung, self.handed, self.rewards = self.rung + 1, 0, {}


class SuccessiveHalvingAgent(FidelityAgent):
    """Synchronous successive halving (Jamieson & Talwalkar, AISTATS 2016) as an agent.

    A bracket draws ``archs`` distinct architectures, evaluates them all at ``min_epochs``, keeps
    the best ``1/eta`` by reward, continues those to ``eta`` times the epochs, and so on up to
    ``max_epochs`` (rungs from ``nas_gym.agents.fidelity.rung_epochs``); then the next bracket starts.
    Every evaluation is one episode, reset at the rung's epochs, and pays only the epochs the
    architecture had not reached yet. Synchronous: a rung is promoted once all its results are in;
    a driver with several workers that asks while a rung waits gets the next bracket's first jobs.

    :param env: a NasGym env whose evaluator answers at chosen epochs (a table with curves).
    :param seed: seeds the draws. :param hparams: SuccessiveHalvingArgs fields over ``envs_config/agents/sh.yaml``.
    :raises nas_gym.envs.nas_env.FidelityError: the env's table has no learning curves.
    """

    synchronous = True
    name = "sh"

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        super().__init__(env)
        top = curve_epochs(env, self.name)
        self.args = file_hparams(SuccessiveHalvingArgs, self.name, env, hparams)
        if self.args.max_epochs > top or self.args.archs < 1:
            raise AgentError(f"{self.name}: need archs >= 1 and max_epochs <= {top} (the table's curves), got "
                             f"archs={self.args.archs}, max_epochs={self.args.max_epochs}")
        self.rungs = rung_epochs(self.args.min_epochs, self.args.max_epochs or top, self.args.eta)
        self.rng = np.random.default_rng(seed)
        self.brackets: list[_Bracket] = []
        self._waiting: dict[tuple[str, int], list[_Bracket]] = {}  # (key, epochs) -> brackets that asked, oldest first

    def _draw(self) -> list[Architecture]:
        space, seen = self.context.space, {}
        for _ in range(50 * self.args.archs):  # a space smaller than ``archs`` gives all it has
            arch = space.sample(self.rng)
            seen.setdefault(arch.key(), arch)
            if len(seen) == self.args.archs:
                break
        return list(seen.values())

    def ask(self) -> Architecture:
        for bracket in self.brackets:
            job = bracket.job()
            if job is not None:
                break
        else:
            bracket = _Bracket(self._draw(), self.rungs, self.args.eta)
            self.brackets.append(bracket)
            job = bracket.job()
            assert job is not None
        arch, self.asked_epochs = job
        self._waiting.setdefault((arch.key(), self.asked_epochs), []).append(bracket)
        return arch

    def tell(self, arch: Architecture, reward: float, info: dict[str, Any]) -> None:
        job = (arch.key(), int(info["epochs"]))
        bracket = self._waiting[job].pop(0)
        if not self._waiting[job]:
            del self._waiting[job]
        bracket.told(arch, reward)
        if bracket.finished:
            self.brackets.remove(bracket)

    def state(self) -> dict[str, Any]:
        index = {id(b): i for i, b in enumerate(self.brackets)}
        return {**super().state(), "brackets": [b.state() for b in self.brackets],
                "waiting": [[key, epochs, [index[id(b)] for b in brackets]]
                            for (key, epochs), brackets in self._waiting.items()]}

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        parse = self.context.space.parse
        self.brackets = [_Bracket.restored(b, parse, self.rungs, self.args.eta) for b in state["brackets"]]
        self._waiting = {(str(key), int(epochs)): [self.brackets[i] for i in order]
                         for key, epochs, order in state["waiting"]}

    def save(self, path: str | Path) -> None:
        self.save_json(path)

    def load(self, path: str | Path) -> None:
        self.load_json(path)
