"""What multi-fidelity agents share: playing an architecture at a chosen number of epochs, the
ask/tell loop with a fidelity, and the hyperparameter files.

**The ask/tell contract, extended by one attribute.** A multi-fidelity agent's ``ask()`` returns an
Architecture, as every ask/tell agent's does, and also sets ``self.asked_epochs``: the epochs at
which that architecture is to be evaluated (None: the evaluator's default). Whoever drives the
agent reads it right after ``ask()`` and plays the job with ``play_at(env, arch, asked_epochs)``;
``tell(arch, reward, info)`` then gets the episode's ``info``, whose ``"epochs"`` says which job it
was. So one worker is exactly ``learn(n)`` below, and K simulated workers read it through
``reset_options`` (``BaseAgent``'s declared hook), asked right after ``ask()``.

**Charging.** Every evaluation goes through the env (``reset(options={"epochs": E})``), so the
evaluator charges it like any other episode: an architecture pays for the epochs of its learning
curve it has not paid for yet, as if its training continued from the last query. An agent that
takes an architecture from 1 to 3 epochs pays its 3-epoch seconds once, not 1 + 3.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from nas_gym.agents.base import AgentError, BaseAgent, make_hparams, play
from nas_gym.spaces.base import Architecture
from nas_gym.storage.atomic import atomic_write_text


def play_at(env: gym.Env, arch: Architecture, epochs: int | None) -> tuple[float, dict[str, Any]]:
    """Play the actions that build ``arch`` in ``env`` reset for an evaluation after ``epochs``
    epochs (None: the evaluator's default); return the final reward and info.

    :raises nas_gym.envs.nas_env.FidelityError: the env's evaluator cannot answer at ``epochs``.
    """
    return play(env, arch, None if epochs is None else {"epochs": int(epochs)})


def curve_epochs(env: gym.Env, agent: str) -> int:
    """The most epochs ``env`` can evaluate at, checked when the agent is made, so that a table
    without learning curves is refused in one line before any episode.

    :raises nas_gym.envs.nas_env.FidelityError: naming the table and what it lacks.
    """
    return env.get_wrapper_attr("fidelity_epochs")(f"agent {agent}")


def file_hparams(cls: type, name: str, env: gym.Env, given: dict[str, Any] | None) -> Any:
    """The hyperparameter dataclass ``cls`` from ``envs_config/agents/<name>.yaml`` (the env's
    preset entry, else ``default``), with ``given`` (``--hparams``) on top.

    :raises AgentError: a key the agent does not take, in the file or given.
    """
    from nas_gym.agents.hparams import preset_hparams, preset_name  # imports torch: only when an agent is made

    values, source = preset_hparams(name, preset_name(env))
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise AgentError(f"{source}: unknown hyperparameter(s) {', '.join(unknown)} for {cls.__name__}; "
                         f"known: {', '.join(sorted(known))}")
    return make_hparams(cls, {**values, **(given or {})})


def rung_epochs(min_epochs: int, max_epochs: int, eta: float) -> list[int]:
    """The rungs' epochs, lowest first: ``max_epochs`` divided by ``eta`` while at least
    ``min_epochs`` (27, 9, 3, 1 for eta 3), rounded to whole epochs, repeats dropped; the top rung
    is always ``max_epochs``, the budget whose result counts.

    :raises AgentError: eta <= 1 or the epochs out of order.
    """
    if eta <= 1:
        raise AgentError(f"eta must be > 1, got {eta}")
    if not 1 <= min_epochs <= max_epochs:
        raise AgentError(f"need 1 <= min_epochs <= max_epochs, got {min_epochs} and {max_epochs}")
    rungs, budget = [], float(max_epochs)
    while budget >= min_epochs - 1e-9:
        rungs.append(max(min_epochs, round(budget)))
        budget /= eta
    return sorted(set(rungs))


class FidelityAgent(BaseAgent):
    """Base of the ask/tell multi-fidelity agents: ``learn(n)`` is n times ask, ``play_at``, tell.

    Subclasses set ``synchronous`` and implement ``ask`` (setting ``asked_epochs``) and ``tell``.
    """

    synchronous: bool = True
    asked_epochs: int | None = None
    args: Any  # the subclass's hyperparameter dataclass
    rng: np.random.Generator  # its own draws (a subclass without any leaves it unset and is not resumable)

    def __init__(self, env: gym.Env) -> None:
        self.env = env
        self.episodes_done = 0

    ask_tell = True  # subclasses implement ask and tell

    def reset_options(self, arch: Architecture) -> dict[str, Any] | None:
        """The epochs the last ``ask`` chose, for a driver that resets the env itself (simulated workers)."""
        return None if self.asked_epochs is None else {"epochs": int(self.asked_epochs)}

    def learn(self, episodes: int) -> None:
        """Exactly ``episodes`` evaluations; ``learn(a)`` then ``learn(b)`` is ``learn(a + b)``."""
        for _ in range(episodes):
            arch = self.ask()
            reward, info = play_at(self.env, arch, self.asked_epochs)
            self.tell(arch, reward, info)
            self.episodes_done += 1

    # -- checkpoints: a JSON file of the agent's own state ----------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything ``learn`` needs to go on exactly; subclasses add theirs to this."""
        return {"args": asdict(self.args), "episodes_done": self.episodes_done, "rng": self.rng.bit_generator.state}

    def restore(self, state: dict[str, Any]) -> None:
        self.episodes_done = int(state["episodes_done"])
        self.rng.bit_generator.state = state["rng"]

    def save_json(self, path: str | Path) -> None:
        atomic_write_text(Path(path), json.dumps(self.state()))

    def load_json(self, path: str | Path) -> None:
        """Restore what :meth:`save_json` wrote, refusing a file saved with other hyperparameters.

        :raises AgentError: the hyperparameters differ (the resumed run would not be the same run).
        """
        state = json.loads(Path(path).read_text())
        if state["args"] != asdict(self.args):
            raise AgentError(f"{path}: saved with hyperparameters {state['args']}, not "
                             f"{asdict(self.args)}; resume with the same --hparams")
        self.restore(state)
