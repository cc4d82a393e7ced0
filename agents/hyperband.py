"""Hyperband (Li et al., JMLR 2018) and a BOHB-style searcher (Falkner et al., ICML 2018) on
Optuna's ``HyperbandPruner``.

Hyperband hedges over how early one may stop: it runs successive halving in several brackets,
from one that starts many architectures at the lowest budget to one that trains a few at the
highest, and draws architectures at random. BOHB keeps the brackets and replaces the random
draws by a TPE-like density model of good and bad results. Optuna implements both pieces: its
``HyperbandPruner`` assigns each trial to a bracket and stops it at a rung when it is not in
the top ``1/eta`` of that bracket's trials there (promotion as in ASHA, asynchronous), and its
``TPESampler`` models each bracket's trials apart. So ``hyperband`` is ``RandomSampler`` +
``HyperbandPruner`` and ``bohb`` is ``TPESampler`` + ``HyperbandPruner``; BOHB's own sampler
(one model per budget, the highest budget with enough results) is not reproduced exactly.

A trial is one architecture: its decisions are Optuna parameters, one per step of the space
(a parameter's name carries the allowed actions, so the space's masks keep every trial valid).
Its reports are episodes at the rung epochs (``eta`` powers of ``min_epochs``, then the last);
each pays only the epochs added since the trial's previous report, as the env charges, and the
reported value is the episode's reward (the validation accuracy under the accuracy reward). A
trial that repeats an architecture gets the results its earlier episodes gave, without playing
them again, so episodes (and the run record) hold only new results while any are left.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from nas_gym.agents.base import AgentError
from nas_gym.agents.fidelity import FidelityAgent, curve_epochs, file_hparams
from nas_gym.agents.optuna_proposals import pickle_study, unpickle_study
from nas_gym.spaces.base import Architecture
from nas_gym.storage.atomic import atomic_write_bytes

# Known architectures proposed in a row before an unseen one is enqueued: the random share of
# BOHB's proposals (Falkner et al.) used as a fallback, so a converged TPE still makes progress.
MAX_KNOWN = 10

@dataclass(frozen=True)
class HyperbandArgs:
    """:param eta: Optuna's ``reduction_factor``: a rung keeps the top ``1/eta`` (a whole number >= 2).
    :param min_epochs: the lowest rung's epochs (``min_resource``).
    :param max_epochs: a trial's last epoch (``max_resource``); 0: the table's last epoch.
    :param startup_trials: ``bohb`` only: random trials before TPE models (``n_startup_trials``).
    """

    eta: int = 3
    min_epochs: int = 1
    max_epochs: int = 0
    startup_trials: int = 10


def _optuna():
    try:
        import optuna
    except ImportError:
        raise AgentError("hyperband and bohb need Optuna: pip install 'nas-gym[optuna]'") from None
    # Optuna logs a line per trial at INFO; a search prints its own progress
    optuna.logging.set_verbosity(logging.WARNING)
    return optuna


def report_epochs(min_epochs: int, max_epochs: int, eta: int) -> list[int]:
    """Where a trial reports: every epoch at which some bracket of the pruner may stop it
    (``min_epochs * eta**k``) and the last."""
    epochs, e = [], min_epochs
    while e < max_epochs:
        epochs.append(e)
        e *= eta
    return [*epochs, max_epochs]


class _Trial:
    """One Optuna trial in flight: its architecture and the index of its next report."""

    def __init__(self, trial: Any, arch: Architecture) -> None:
        self.trial, self.arch, self.next, self.running = trial, arch, 0, False


class OptunaHyperband(FidelityAgent):
    """Hyperband through Optuna's ask-and-tell interface, one report per episode.

    :param env: a NasGym env whose evaluator answers at chosen epochs (a table with curves).
    :param seed: seeds the sampler. :param hparams: HyperbandArgs fields over
        ``envs_config/agents/<name>.yaml``.
    :raises AgentError: Optuna is missing (the ``optuna`` extra), or hyperparameters out of range.
    :raises nas_gym.envs.nas_env.FidelityError: the env's table has no learning curves.
    """

    synchronous = False
    name = "hyperband"

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        super().__init__(env)
        top = curve_epochs(env, self.name)
        optuna = _optuna()
        self.args = a = file_hparams(HyperbandArgs, self.name, env, hparams)
        if isinstance(a.eta, bool) or not isinstance(a.eta, int) or a.eta < 2 or not 1 <= a.min_epochs <= (a.max_epochs or top) <= top:
            raise AgentError(f"{self.name}: need a whole eta >= 2 and 1 <= min_epochs <= max_epochs <= {top}, got "
                             f"eta={a.eta}, min_epochs={a.min_epochs}, max_epochs={a.max_epochs}")
        self.epochs = report_epochs(a.min_epochs, a.max_epochs or top, a.eta)
        pruner = optuna.pruners.HyperbandPruner(min_resource=a.min_epochs, max_resource=self.epochs[-1],
                                                reduction_factor=a.eta)
        # a fixed study name: the pruner assigns brackets by a hash of it and the trial number
        self.study = optuna.create_study(direction="maximize", sampler=self.make_sampler(optuna, seed), pruner=pruner,
                                         study_name=f"nas-gym-{self.name}")
        self.optuna = optuna
        self.rng = np.random.default_rng(seed)  # the unseen draws of the fallback
        self.flight: list[_Trial] = []
        self.known: dict[str, dict[int, float]] = {}  # key -> epochs -> reward of the episodes played

    def make_sampler(self, optuna: Any, seed: int) -> Any:
        return optuna.samplers.RandomSampler(seed=seed)

    @staticmethod
    def _param_name(step: int, mask: np.ndarray) -> str:
        """Optuna needs the same choices under one name: a step whose mask forbids some actions
        gets a name of its own."""
        return f"step{step}" if mask.all() else f"step{step}:" + "".join("01"[int(m)] for m in mask)

    def _architecture(self, trial: Any) -> Architecture:
        """The trial's architecture, one categorical parameter per decision among the allowed actions."""
        space = self.context.space
        partial, step = space.empty(), 0
        while True:
            mask = space.mask(partial)
            allowed = [int(i) for i in np.flatnonzero(mask)]
            partial, complete = space.step(partial, trial.suggest_categorical(self._param_name(step, mask), allowed))
            if complete:
                return partial
            step += 1

    def _next_trial(self) -> _Trial:
        """A trial in flight that waits for its next report, else a new one."""
        job = next((t for t in self.flight if not t.running), None)
        if job is None:
            trial = self.study.ask()
            job = _Trial(trial, self._architecture(trial))
            self.flight.append(job)
        return job

    def _report(self, job: _Trial, reward: float) -> bool:
        """Report ``reward`` at the trial's next epoch and let the pruner decide; True if it ended."""
        epochs = self.epochs[job.next]
        job.trial.report(reward, epochs)
        job.running, job.next = False, job.next + 1
        if job.next == len(self.epochs):
            self.study.tell(job.trial, reward)
        elif job.trial.should_prune():
            self.study.tell(job.trial, state=self.optuna.trial.TrialState.PRUNED)
        else:
            return False
        self.flight.remove(job)
        return True

    def _replay(self, job: _Trial) -> bool:
        """Report what earlier episodes of the trial's architecture already said, without playing
        them again; True if that ended the trial."""
        known = self.known.get(job.arch.key(), {})
        while self.epochs[job.next] in known:
            if self._report(job, known[self.epochs[job.next]]):
                return True
        return False

    def _enqueue_unseen(self) -> None:
        """Make the next new trial an architecture no episode has played yet, drawn uniformly
        (none if the draws find none: the space is exhausted)."""
        space = self.context.space
        for _ in range(50):
            arch = space.sample(self.rng)
            if arch.key() not in self.known:
                break
        else:
            return
        params, partial = {}, space.empty()
        for step, action in enumerate(space.actions_of(arch)):
            params[self._param_name(step, space.mask(partial))] = action
            partial, _ = space.step(partial, action)
        self.study.enqueue_trial(params)

    def ask(self) -> Architecture:
        # Samplers repeat architectures, TPE more so as it converges in a small space: a repeat's
        # known results are replayed to Optuna, so an episode is only played for a new result.
        for attempt in range(MAX_KNOWN + 1):
            if attempt == MAX_KNOWN:
                self._enqueue_unseen()
            job = self._next_trial()
            if not self._replay(job):
                break
        else:  # even the unseen draw was known: the space is exhausted, play a repeat (free)
            job = self._next_trial()
        job.running = True
        self.asked_epochs = self.epochs[job.next]
        return job.arch

    def tell(self, arch: Architecture, reward: float, info: dict[str, Any]) -> None:
        epochs = int(info["epochs"])
        job = next(t for t in self.flight if t.running and t.arch.key() == arch.key() and self.epochs[t.next] == epochs)
        self.known.setdefault(arch.key(), {})[epochs] = reward
        self._report(job, reward)


    # -- checkpoints -------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """The study and the trials in flight in one pickle (a trial refers to its study), the
        rest as JSON. The run folder is signed (``nas_gym.storage.trust``): a resume unpickles
        only what this user's nas-gym wrote."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path / "study.pkl", pickle_study(self.study, self.flight))
        self.save_json(path / "driver.json")

    def state(self) -> dict[str, Any]:
        return {**super().state(), "known": {k: [[e, r] for e, r in v.items()] for k, v in self.known.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        self.known = {str(k): {int(e): float(r) for e, r in v} for k, v in state["known"].items()}

    def load(self, path: str | Path) -> None:
        """Only for a folder :meth:`save` wrote (it unpickles)."""
        path = Path(path)
        self.load_json(path / "driver.json")
        self.study, self.flight = unpickle_study((path / "study.pkl").read_bytes())


class OptunaBohb(OptunaHyperband):
    """BOHB-style: Optuna's TPE sampler (one model per Hyperband bracket) with the Hyperband pruner."""

    name = "bohb"

    def make_sampler(self, optuna: Any, seed: int) -> Any:
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.args.startup_trials)
