"""``--agent smac_hb``: SMAC3's multi-fidelity facade, Hyperband with random-forest proposals
(Lindauer et al., "SMAC3: A Versatile Bayesian Optimization Package for Hyperparameter
Optimization", JMLR 2022; Hyperband: Li et al., JMLR 2018).

SMAC's Hyperband intensifier runs successive-halving brackets over budgets between ``min_epochs``
and ``max_epochs`` (SMAC's own geometric budgets, ``max_epochs / eta**k``, rounded here to whole
epochs), and its random forest, fitted on the results so far, proposes the configurations that
start each bracket. A budget is the number of epochs an episode is evaluated at
(``nas_gym.agents.fidelity``): on a table with learning curves the architecture pays only for the
epochs it had not reached, with real training a run of that many epochs.

Decisions are SMAC's categorical hyperparameters ``d0 .. d<max_steps-1>`` over the whole action
set, decoded with the deterministic repair of ``nas_gym.agents.optuna_proposals.PositionEncoding``.
A proposal whose architecture was already played at its epochs (two configurations can decode to
one architecture) is told the known result without an episode; after ``duplicate_draws`` such
proposals in a row the last is played anyway, a repeat the evaluator does not charge. In a small
space SMAC eventually has no configuration left to propose; from then on the agent plays
architectures not yet played at the top budget, drawn uniformly.

Asynchronous: with several simulated workers SMAC starts the next bracket while a rung waits for
its results. Not resumable, for the reason ``--agent smac`` is not (SMAC restores its history but
not its random generators). Needs the ``smac`` extra: ``pip install 'nas-gym[smac]'``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from nas_gym.agents.base import AgentError
from nas_gym.agents.fidelity import FidelityAgent, curve_epochs, file_hparams
from nas_gym.agents.optuna_proposals import PositionEncoding, import_extra
from nas_gym.agents.smac_agent import _NO_LIMIT, _never_called, smac_parts
from nas_gym.spaces.base import Architecture

_UNSEEN_DRAWS = 1000  # uniform draws to find an architecture not played at the top budget


@dataclass(frozen=True)
class SMACHyperbandArgs:
    """:param eta: Hyperband's halving rate (a whole number >= 2).
    :param min_epochs: the lowest budget SMAC may use. :param max_epochs: the top budget, whose
        result counts; 0: the table's last epoch (or ``train.epochs`` with real training).
    :param initial_design: random configurations before the forest proposes.
    :param n_trees: trees of the random forest. :param duplicate_draws: proposals in a row
        answered from known results before one is played anyway."""

    eta: int = 3
    min_epochs: int = 1
    max_epochs: int = 0
    initial_design: int = 10
    n_trees: int = 10
    duplicate_draws: int = 10


class SMACHyperband(FidelityAgent):
    """:param env: a NasGym env whose evaluator answers at chosen epochs. :param seed: seeds SMAC.
    :param hparams: SMACHyperbandArgs fields over ``envs_config/agents/smac_hb.yaml``.
    :param logdir: the run folder; SMAC writes its run history under ``smac/`` there.
    :raises AgentError: smac missing (the ``smac`` extra), or hyperparameters out of range.
    :raises nas_gym.envs.nas_env.FidelityError: the env cannot answer at chosen epochs.
    """

    synchronous = False
    name = "smac_hb"

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        super().__init__(env)
        import_extra("smac", "smac", self.name)
        top = curve_epochs(env, self.name)
        self.args = a = file_hparams(SMACHyperbandArgs, self.name, env, hparams)
        if (isinstance(a.eta, bool) or not isinstance(a.eta, int) or a.eta < 2
                or not 1 <= a.min_epochs <= (a.max_epochs or top) <= top or min(a.initial_design, a.n_trees, a.duplicate_draws) < 1):
            raise AgentError(f"{self.name}: need a whole eta >= 2, 1 <= min_epochs <= max_epochs <= {top}, and "
                             f"initial_design, n_trees, duplicate_draws >= 1; got {a}")
        self.top = a.max_epochs or top
        self.encoding = PositionEncoding(self.context.space)
        self.smac = self._facade(seed, logdir)
        self.known: dict[tuple[str, int], float] = {}  # (key, epochs) -> reward of the episodes played
        self.flight: list[tuple[Any, str, int]] = []  # (SMAC's trial, key, epochs) asked, not told yet
        self.duplicates = self.repaired = self.fallbacks = 0
        self.exhausted = False  # SMAC has no configuration left: uniform draws at the top budget from then on
        self.rng = np.random.default_rng(seed)  # those draws only

    def _facade(self, seed: int, logdir: Path | None) -> Any:
        from smac import MultiFidelityFacade as Facade
        from smac import Scenario

        space, output, model, self._tmp = smac_parts(self.encoding, seed, self.args.n_trees, logdir, self.name)
        scenario = Scenario(space, deterministic=True, n_trials=_NO_LIMIT, seed=seed, output_directory=output,
                            name="smac_hb", min_budget=self.args.min_epochs, max_budget=self.top)
        return Facade(scenario, _never_called, model=model, overwrite=True, logging_level=False,
                      intensifier=Facade.get_intensifier(scenario, eta=self.args.eta),
                      initial_design=Facade.get_initial_design(scenario, n_configs=self.args.initial_design))

    def _epochs(self, budget: float) -> int:
        return int(min(self.top, max(1, round(budget))))

    def _unseen_at_top(self) -> Architecture:
        """After SMAC ran out of configurations (a small space): an architecture not yet played at
        the top budget, drawn uniformly (a repeat, free, once none is left)."""
        space = self.context.space
        for _ in range(_UNSEEN_DRAWS):
            arch = space.sample(self.rng)
            if (arch.key(), self.top) not in self.known and all(job[1:] != (arch.key(), self.top) for job in self.flight):
                break
        return arch

    def ask(self) -> Architecture:
        from smac.main.exceptions import ConfigurationSpaceExhaustedException
        from smac.runhistory.dataclasses import TrialValue

        if self.exhausted:
            arch = self._unseen_at_top()
            self.fallbacks += 1
            self.flight.append((None, arch.key(), self.top))
            self.asked_epochs = self.top
            return arch
        for attempt in range(self.args.duplicate_draws + 1):
            try:
                trial = self.smac.ask()
            except ConfigurationSpaceExhaustedException:  # every configuration of a small space is in its history
                self.exhausted = True
                return self.ask()
            arch, repaired = self.encoding.decode([int(trial.config[n]) for n in self.encoding.names()])
            self.repaired += int(repaired > 0)
            job = (arch.key(), self._epochs(trial.budget))
            if job not in self.known or attempt == self.args.duplicate_draws:
                break
            self.duplicates += 1  # played before at these epochs: told at once, no episode
            self.smac.tell(trial, TrialValue(cost=1.0 - self.known[job]))
        self.flight.append((trial, *job))
        self.asked_epochs = job[1]
        return arch

    def tell(self, arch: Architecture, reward: float, info: dict[str, Any]) -> None:
        from smac.runhistory.dataclasses import TrialValue

        job = (arch.key(), int(info["epochs"]))
        i = next(i for i, (_, key, epochs) in enumerate(self.flight) if (key, epochs) == job)
        trial = self.flight.pop(i)[0]
        self.known[job] = reward
        if trial is not None:  # a fallback after SMAC ran out is not SMAC's trial
            self.smac.tell(trial, TrialValue(cost=1.0 - reward, additional_info={"arch": arch.text()}))
