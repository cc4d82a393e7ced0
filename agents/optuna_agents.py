"""Optuna's single-objective samplers as nas-gym agents: ``--agent tpe`` and ``--agent gp``.

* ``tpe``: the Tree-structured Parzen Estimator (Bergstra, Bardenet, Bengio, Kegl, "Algorithms
  for Hyper-Parameter Optimization", NeurIPS 2011), Optuna's ``TPESampler``: after
  ``n_startup_trials`` random proposals, it splits the trials told so far into good and bad by
  reward and proposes the candidate that maximises the ratio of the two densities.
* ``gp``: Gaussian-process Bayesian optimisation, Optuna's ``GPSampler`` (log expected
  improvement over a GP fitted to the trials told so far; categorical choices are one-hot).

Both maximise the env's reward. Each episode's decisions are the categorical parameters
``d0 .. d<max_steps-1>`` over the whole action set, decoded with a deterministic repair of
forbidden values; duplicates are answered without an episode (``nas_gym.agents.optuna_proposals`` says
how and why). Optuna is an optional extra: ``pip install 'nas-gym[optuna]'``.

Resuming: ``save`` pickles the study (trials and the sampler's random state) beside a JSON of
the driver's state, so a resumed run proposes what an uninterrupted one would. Unpickling runs
code, so ``load`` is only for files this agent wrote; nas-gym checks a run folder's signature
before ``--resume`` loads anything from it (``nas_gym.storage.trust``).
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym

from nas_gym.agents.base import AgentError, make_hparams
from nas_gym.agents.hparams import preset_hparams, preset_name
from nas_gym.agents.optuna_proposals import ProposalAgent, import_extra, pickle_study, unpickle_study
from nas_gym.spaces.base import Architecture
from nas_gym.storage.atomic import atomic_write_bytes, atomic_write_text

# Optuna samplers holding a thread lock (NSGAIISampler caches its generations under one): not
# picklable, so left out of a checkpoint and made anew on load.


def _check_common(name: str, n_startup_trials: int, duplicate_draws: int) -> None:
    if n_startup_trials < 0:
        raise AgentError(f"{name}: n_startup_trials must be >= 0, got {n_startup_trials}")
    if duplicate_draws < 1:
        raise AgentError(f"{name}: duplicate_draws must be >= 1, got {duplicate_draws}")


@dataclass(frozen=True)
class TPEArgs:
    """:param n_startup_trials: random proposals before the densities are fitted (Optuna's 10).
    :param n_ei_candidates: candidates drawn from the good density per proposal.
    :param multivariate: one joint density over all decisions (Falkner et al. 2018's form)
        instead of one per decision (Bergstra et al. 2011): decisions of an architecture interact.
    :param constant_liar: pending proposals count as bad trials, so asynchronous workers are
        not handed the same proposal.
    :param duplicate_draws: duplicate proposals in a row before a uniformly drawn new
        architecture is evaluated instead."""

    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool = True
    constant_liar: bool = True
    duplicate_draws: int = 10

    def __post_init__(self) -> None:
        _check_common("tpe", self.n_startup_trials, self.duplicate_draws)
        if self.n_ei_candidates < 1:
            raise AgentError(f"tpe: n_ei_candidates must be >= 1, got {self.n_ei_candidates}")


@dataclass(frozen=True)
class GPArgs:
    """:param n_startup_trials: random proposals before the GP is fitted.
    :param deterministic_objective: fit no observation noise (a table or a cached result gives
        one reward per architecture).
    :param duplicate_draws: as for TPE."""

    n_startup_trials: int = 10
    deterministic_objective: bool = True
    duplicate_draws: int = 10

    def __post_init__(self) -> None:
        _check_common("gp", self.n_startup_trials, self.duplicate_draws)


class OptunaAgent(ProposalAgent):
    """An Optuna study driven by ask/tell; subclasses name their sampler and hyperparameters.

    :param env: a NasGym env. :param seed: seeds the sampler and the fallback draws.
    :param hparams: fields of the subclass's ``Args``, over ``envs_config/agents/<name>.yaml``.
    :param logdir: the run folder (NSGA-II writes its Pareto front there).
    """

    NAME: ClassVar[str]
    Args: ClassVar[type]
    directions: ClassVar[list[str]] = ["maximize"]
    THREADS: ClassVar[int | None] = None  # torch threads while proposing; None: leave them

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        self.optuna = import_extra("optuna", "optuna", self.NAME)
        file_hparams, source = preset_hparams(self.NAME, preset_name(env))
        try:  # a bad entry in the file is named with the file, before --hparams could hide it
            make_hparams(self.Args, file_hparams)
        except AgentError as e:
            raise AgentError(f"{source}: {e}") from None
        self.args = make_hparams(self.Args, {**file_hparams, **(hparams or {})})
        self.hparams_source = source
        super().__init__(env, seed=seed, logdir=logdir)
        self.duplicate_draws = self.args.duplicate_draws
        self.optuna.logging.set_verbosity(self.optuna.logging.WARNING)  # not one INFO line per trial
        dist = self.optuna.distributions.CategoricalDistribution
        self.distributions = {name: dist(list(range(self.encoding.n_actions))) for name in self.encoding.names()}
        with warnings.catch_warnings():  # options Optuna marks experimental are chosen on purpose here
            warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)
            sampler = self.make_sampler(seed)
        self.study = self.optuna.create_study(directions=self.directions, sampler=sampler)

    def make_sampler(self, seed: int) -> Any:
        raise NotImplementedError

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        """Torch CPU threads while proposing (GP), the caller's count restored afterwards."""
        if self.THREADS is None:
            yield
            return
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.THREADS)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def objective(self, reward: float, info: dict[str, Any]) -> float | list[float]:
        """What the study is told for a result: the reward (NSGA-II: accuracy and cost)."""
        return reward

    # -- the driver's hooks ----------------------------------------------------------------
    def _propose(self) -> tuple[Any, list[int]]:
        with warnings.catch_warnings(), self._threads():
            warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)
            trial = self.study.ask(self.distributions)
        return trial, [int(trial.params[name]) for name in self.encoding.names()]

    def _propose_fixed(self, values: list[int]) -> Any:
        self.study.enqueue_trial(dict(zip(self.encoding.names(), values, strict=True)),
                                 user_attrs={"fallback": True})
        trial, _ = self._propose()
        return trial

    def _report(self, handle: Any, arch: Architecture, reward: float, info: dict[str, Any]) -> None:
        values = [int(handle.params[name]) for name in self.encoding.names()]
        _, repaired = self.encoding.decode(values)
        handle.set_user_attr("arch", arch.text())
        handle.set_user_attr("repaired", repaired)
        self.study.tell(handle, self.objective(reward, info))

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path / "study.pkl", pickle_study(self.study))
        atomic_write_text(path / "driver.json", json.dumps({"args": asdict(self.args), **self.driver_state()}))

    def load(self, path: str | Path) -> None:
        """Only for a folder :meth:`save` wrote (it unpickles)."""
        path = Path(path)
        state = json.loads((path / "driver.json").read_text())
        if state["args"] != asdict(self.args):
            raise AgentError(f"{path}: saved with hyperparameters {state['args']}, not {asdict(self.args)}")
        (self.study,) = unpickle_study((path / "study.pkl").read_bytes())
        self.load_driver_state(state)


class TPE(OptunaAgent):
    """``--agent tpe``: Optuna's TPESampler (Bergstra et al. 2011)."""

    NAME = "tpe"
    Args = TPEArgs

    def make_sampler(self, seed: int) -> Any:
        a = self.args
        return self.optuna.samplers.TPESampler(seed=seed, n_startup_trials=a.n_startup_trials,
                                               n_ei_candidates=a.n_ei_candidates, multivariate=a.multivariate,
                                               constant_liar=a.constant_liar)


class GP(OptunaAgent):
    """``--agent gp``: Optuna's GPSampler (GP Bayesian optimisation, log expected improvement)."""

    NAME = "gp"
    Args = GPArgs
    # The GP's tensors are a few dozen trials by a few dozen one-hot columns: threads only add
    # synchronisation. Measured on mnist1d-tiny (synthetic scores, 2 shared cores), 40 episodes
    # took 346 s with torch's default threads and 0.2-3 s per proposal on one.
    THREADS = 1

    def make_sampler(self, seed: int) -> Any:
        a = self.args
        return self.optuna.samplers.GPSampler(seed=seed, n_startup_trials=a.n_startup_trials,
                                              deterministic_objective=a.deterministic_objective)
