"""``--agent smac``: random-forest Bayesian optimisation with SMAC3's hyperparameter-optimisation
facade (Hutter, Hoos, Leyton-Brown, "Sequential Model-Based Optimization for General Algorithm
Configuration", LION 2011; Lindauer et al., "SMAC3: A Versatile Bayesian Optimization Package for
Hyperparameter Optimization", JMLR 2022).

A random forest models the cost (1 - reward) of the configurations told so far; the next
configurations maximise expected improvement under it, found by local search over one-exchange
neighbourhoods plus random sampling, with a share of purely random configurations interleaved.
Random forests split on categorical values directly, which is why SMAC's forest facade (not its
Gaussian-process black-box facade) is the one for these all-categorical spaces. Each
configuration is evaluated once (``deterministic``: a table or the cache gives one reward per
architecture).

Decisions: the categorical hyperparameters ``d0 .. d<max_steps-1>`` over the whole action set,
decoded with a deterministic repair of forbidden values; duplicates are answered without an
episode (``nas_gym.agents.optuna_proposals``).

Two departures from the facade's defaults, both for speed and neither changing the model: the
forest fits its trees in one thread (``n_jobs=1``; its default, every core, spent most of each
refit waiting on a thread pool on a 2-core machine) and with ``max_leaf_nodes=None`` (the default,
2**20, makes scikit-learn's best-first builder allocate for a million leaves per tree: a refit on
ten points took 5 s; unlimited leaves either way grow the same full trees).

SMAC keeps its state in its output folder (``<logdir>/smac``, else a temporary folder). No
``save`` / ``load``: SMAC's own restore reads that folder back but not its random generators'
states, so a resumed run would not propose what an uninterrupted one would; a resumed search
restarts the agent and its evaluations come back from the cache. SMAC is an optional extra:
``pip install 'nas-gym[smac]'``.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from nas_gym.agents.base import AgentError, make_hparams
from nas_gym.agents.hparams import preset_hparams, preset_name
from nas_gym.agents.optuna_proposals import ProposalAgent, ProposalsExhausted, import_extra
from nas_gym.spaces.base import Architecture

_NO_LIMIT = 10**9  # SMAC's trial budget: nas-gym's search decides when to stop


@dataclass(frozen=True)
class SMACArgs:
    """:param initial_design: Sobol-sequence configurations before the forest is fitted.
    :param n_trees: trees of the random forest (the facade's 10).
    :param random_probability: share of proposals drawn at random (the facade's 0.2).
    :param retrain_after: proposals taken from one fitted forest before it is refitted.
    :param duplicate_draws: duplicate proposals in a row before a uniformly drawn new
        architecture is evaluated instead."""

    initial_design: int = 10
    n_trees: int = 10
    random_probability: float = 0.2
    retrain_after: int = 8
    duplicate_draws: int = 10

    def __post_init__(self) -> None:
        for name in ("initial_design", "n_trees", "retrain_after", "duplicate_draws"):
            if getattr(self, name) < 1:
                raise AgentError(f"smac: {name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.random_probability <= 1.0:
            raise AgentError(f"smac: random_probability must be in [0, 1], got {self.random_probability}")


class SMAC(ProposalAgent):
    """:param env: a NasGym env. :param seed: seeds SMAC (forest, Sobol design, local search).
    :param hparams: SMACArgs fields, over ``envs_config/agents/smac.yaml``.
    :param logdir: the run folder; SMAC writes its run history under ``smac/`` there."""

    NAME = "smac"

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        import_extra("smac", "smac", self.NAME)
        file_hparams, self.hparams_source = preset_hparams(self.NAME, preset_name(env))
        try:  # a bad entry in the file is named with the file, before --hparams could hide it
            make_hparams(SMACArgs, file_hparams)
        except AgentError as e:
            raise AgentError(f"{self.hparams_source}: {e}") from None
        self.args = make_hparams(SMACArgs, {**file_hparams, **(hparams or {})})
        super().__init__(env, seed=seed, logdir=logdir)
        self.duplicate_draws = self.args.duplicate_draws
        from smac import HyperparameterOptimizationFacade as Facade
        from smac import Scenario

        self.configspace, output, model, self._tmp = smac_parts(self.encoding, seed, self.args.n_trees, self.logdir, "smac")
        scenario = Scenario(self.configspace, deterministic=True, n_trials=_NO_LIMIT, seed=seed,
                            output_directory=output, name="smac")
        self.smac = Facade(
            scenario, _never_called, model=model, overwrite=True, logging_level=False,
            intensifier=Facade.get_intensifier(scenario, max_config_calls=1),
            initial_design=Facade.get_initial_design(scenario, n_configs=self.args.initial_design),
            random_design=Facade.get_random_design(scenario, probability=self.args.random_probability),
            config_selector=Facade.get_config_selector(scenario, retrain_after=self.args.retrain_after),
        )

    def _propose(self) -> tuple[Any, list[int]]:
        from smac.main.exceptions import ConfigurationSpaceExhaustedException

        try:
            info = self.smac.ask()
        except ConfigurationSpaceExhaustedException:  # a small space: every configuration tried
            raise ProposalsExhausted from None
        return info, [int(info.config[name]) for name in self.encoding.names()]

    def _propose_fixed(self, values: list[int]) -> Any:
        from ConfigSpace import Configuration
        from smac.runhistory.dataclasses import TrialInfo

        config = Configuration(self.configspace, values=dict(zip(self.encoding.names(), values, strict=True)))
        return TrialInfo(config, seed=0)

    def _report(self, handle: Any, arch: Architecture, reward: float, info: dict[str, Any]) -> None:
        from smac.runhistory.dataclasses import TrialValue

        self.smac.tell(handle, TrialValue(cost=1.0 - reward, additional_info={"arch": arch.text()}))


def smac_parts(encoding: Any, seed: int, n_trees: int, logdir: Path | None, name: str
               ) -> tuple[Any, Path, Any, tempfile.TemporaryDirectory | None]:
    """What both SMAC agents build alike: the categorical configuration space of ``encoding``'s
    decisions, SMAC's output folder (``<logdir>/smac``, else a temporary folder the agent keeps,
    returned last, None otherwise), and the random forest.

    The forest fits in one thread and with unlimited leaves (see the module docstring): the same
    trees, without a thread pool's waits or an allocation for a million leaves per tree.
    """
    from ConfigSpace import Categorical, ConfigurationSpace
    from smac.model.random_forest import RandomForest

    # SMAC's own logging set-up would reconfigure the root logger; only its loggers are quietened
    logging.getLogger("smac").setLevel(logging.ERROR)
    space = ConfigurationSpace(seed=seed)
    space.add([Categorical(n, list(range(encoding.n_actions))) for n in encoding.names()])
    tmp = None
    if logdir is not None:
        output = Path(logdir) / "smac"
    else:  # removed with the agent
        tmp = tempfile.TemporaryDirectory(prefix=f"nas-gym-{name.replace('_', '-')}-")
        output = Path(tmp.name)
    model = RandomForest(space, log_y=True, n_trees=n_trees, ratio_features=1.0, min_samples_split=2,
                         min_samples_leaf=1, seed=seed, n_jobs=1, max_leaf_nodes=None)
    return space, output, model, tmp


def _never_called(config: Any, seed: int = 0, budget: float = 0.0) -> float:
    """SMAC's facade requires a target function; with ask/tell, nas-gym's env is the target."""
    raise RuntimeError("SMAC's target function is not used: nas-gym evaluates through the env")
