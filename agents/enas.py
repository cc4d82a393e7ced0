"""ENAS (Pham et al., ICML 2018): a REINFORCE controller rewarded by one set of shared weights.

Two things learn in turn. The shared weights (the space's supernet) take ``shared_steps``
weight steps, each on the path of an architecture the controller samples (the preset's
optimizer at its constant learning rate: a search's length is not known when it starts). Then the controller
(the LSTM policy of ``nas_gym.agents.reinforce``, masked by the space's rules) samples
``controller_steps`` architectures; each one's reward is its supernet accuracy on a validation
batch, after recalibrating its batch norm on a training batch (``score_path``), and each takes
one policy-gradient step against a moving-average baseline (decay ``baseline_decay``), with an
entropy bonus, as in Zoph & Le and ENAS. No architecture is trained on its own during search:
that is ENAS's thousandfold saving, and its risk (shared-weight rewards rank architectures
loosely; see ``docs/one_shot.md``).

Episodes: each episode is one round of both phases, then the architecture the controller
prefers (the most likely action at every step, under the masks) is played through the env,
where the preset's evaluator (real training, the table) scores and charges it like any agent's;
the rounds' own seconds are charged to the same clock. The run record thus shows the
controller's preferred architecture after every round, and the last one is ENAS's answer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from nas_gym.agents.base import AgentError, BaseAgent, make_hparams, play
from nas_gym.agents.reinforce import Controller
from nas_gym.oneshot.agents import charged, one_shot_setup
from nas_gym.oneshot.memory import fitting_batch, one_shot_autocast, out_of_memory_as
from nas_gym.oneshot.training import BatchStream, PathTrainer
from nas_gym.spaces.supernet.base import score_path
from nas_gym.storage.atomic import atomic_write
from nas_gym.training.train import forked_rng, seed_torch

_MIN_STD = 0.01  # floor of the reward scale: see nas_gym.agents.reinforce


@dataclass(frozen=True)
class EnasArgs:
    """:param shared_steps: weight steps per episode, one sampled path each; 0 means one pass
        over the training split.
    :param controller_steps: architectures sampled per episode to train the controller.
    :param learning_rate: the controller's Adam step size (``nas_gym.agents.reinforce``'s default: ENAS's
        3.5e-4 was tuned for thousands of controller steps, a search here has hundreds).
    :param hidden_size: LSTM width (ENAS: 100 units).
    :param baseline_decay: the reward baseline's moving-average decay.
    :param entropy_coef: weight of the entropy bonus (ENAS: 1e-4; larger here, where a short
        search must not settle on the first good path).
    :param max_grad_norm: gradient clipping of the controller.
    :param reward_samples: validation samples per reward (ENAS: one minibatch).
    :param batch_size: the shared weights' training batch; 0 means the preset's ``train.batch_size``
        lowered to what fits in memory (``nas_gym.oneshot.memory``).
    """

    shared_steps: int = 0
    controller_steps: int = 30
    learning_rate: float = 0.002
    hidden_size: int = 64
    baseline_decay: float = 0.9
    entropy_coef: float = 0.01
    max_grad_norm: float = 1.0
    reward_samples: int = 256
    batch_size: int = 0


class Enas(BaseAgent):
    """:param env: a NasGym env whose space builds a supernet (layer chain, cell).
    :param seed: seeds the weights, the controller, sampling and the batch order.
    :param hparams: fields of :class:`EnasArgs`.
    :param logdir: unused; ``enas/baseline`` and ``enas/reward`` go through ``env.record_scalar``.
    """
    trains_supernet: ClassVar[bool] = True  # no table replays it: the leaderboard names it absent (nas_gym.runs.board_absent)

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        self.env, self.seed = env, seed
        self.args: EnasArgs = make_hparams(EnasArgs, hparams)
        a = self.args
        if (a.shared_steps < 0 or a.controller_steps < 1 or a.reward_samples < 1 or not 0 <= a.baseline_decay < 1
                or a.batch_size < 0):
            raise AgentError(f"enas: need shared_steps >= 0, controller_steps >= 1, reward_samples >= 1, "
                             f"0 <= baseline_decay < 1 and batch_size >= 0; got {a}")
        try:
            self.setup = one_shot_setup(self.context.config, self.context.space, seed)
        except ValueError as e:
            raise AgentError(str(e)) from None
        data, train = self.setup.data, self.setup.config.train
        cpu = torch.device("cpu")
        with forked_rng(cpu):
            seed_torch(seed, cpu)
            self.controller = Controller(self.setup.space.n_actions, a.hidden_size)
        self.controller_opt = torch.optim.Adam(self.controller.parameters(), lr=a.learning_rate)
        self.generator = torch.Generator().manual_seed(seed)
        autocast = one_shot_autocast(self.setup.device, self.setup.config.runtime)
        self.batch_size = a.batch_size or self._fitting_batch(train.batch_size, autocast)
        self.trainer = PathTrainer(self.setup.net, BatchStream(data.x_train, data.y_train, self.batch_size, seed),
                                   train, None, autocast)
        self.calib_batches = BatchStream(data.x_train, data.y_train, self.batch_size, seed + 1)
        self.val_batches = BatchStream(data.x_val, data.y_val, a.reward_samples, seed + 2)
        self.baseline: float | None = None
        self.reward_var = 0.0
        self.episodes_done = 0
        self._record = self.context.record_scalar

    def _fitting_batch(self, wanted: int, autocast: Any) -> int:
        """The preset's batch, or the largest that fits the most demanding of a few random paths
        (measured on a copy of the supernet, with a generator of its own: the search's streams
        and batch-norm statistics stay untouched)."""
        net, x, y = copy.deepcopy(self.setup.net), self.setup.data.x_train, self.setup.data.y_train
        rng = np.random.default_rng(self.seed)

        def loss(arch: Any) -> Any:
            def run(n: int) -> torch.Tensor:
                with autocast():
                    logits = net(x[:n], arch)
                return torch.nn.functional.cross_entropy(logits.float(), y[:n])
            return run

        with forked_rng(self.setup.device):
            return fitting_batch([loss(self.setup.space.sample(rng)) for _ in range(8)], wanted, self.setup.device)

    # -- the controller ---------------------------------------------------------------------
    def sample(self, greedy: bool = False) -> tuple[Any, list[int], list[list[bool]]]:
        """An architecture from the controller (its most likely one if ``greedy``), with the
        actions and masks that built it."""
        space = self.setup.space
        partial, done, actions, masks = space.empty(), False, [], []
        with torch.no_grad():
            token, h, c = self.controller.initial()
            while not done:
                mask = space.mask(partial)
                logp, h, c = self.controller.step(token, h, c, torch.as_tensor(mask).unsqueeze(0))
                action = int(logp.argmax()) if greedy else int(torch.multinomial(logp.exp(), 1, generator=self.generator))
                partial, done = space.step(partial, action)
                actions.append(action)
                masks.append(mask.tolist())
                token = torch.tensor([action])
        return partial, actions, masks

    def _update(self, actions: list[int], masks: list[list[bool]], reward: float) -> None:
        """One REINFORCE step; the first reward only sets the baseline (see ``nas_gym.agents.reinforce``)."""
        if self.baseline is None:
            self.baseline = reward
        advantage = (reward - self.baseline) / max(self.reward_var**0.5, _MIN_STD)
        token, h, c = self.controller.initial()
        log_prob, entropy = torch.zeros(()), torch.zeros(())
        for action, mask in zip(actions, masks, strict=True):
            logp, h, c = self.controller.step(token, h, c, torch.tensor([mask]))
            log_prob = log_prob + logp[0, action]
            entropy = entropy - (logp.exp() * logp).sum()
            token = torch.tensor([action])
        loss = -advantage * log_prob - self.args.entropy_coef * entropy
        self.controller_opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.controller.parameters(), self.args.max_grad_norm)
        self.controller_opt.step()
        d = self.args.baseline_decay
        self.reward_var = d * self.reward_var + (1.0 - d) * (reward - self.baseline) ** 2
        self.baseline = d * self.baseline + (1.0 - d) * reward

    def _round(self) -> float:
        """Shared-weight steps on sampled paths, then controller steps; the mean reward."""
        steps = self.args.shared_steps or self.trainer.batches.batches_per_pass
        for _ in range(steps):
            self.trainer.step(self.sample()[0])
        rewards = []
        for _ in range(self.args.controller_steps):
            arch, actions, masks = self.sample()
            val_x, val_y = self.val_batches.next()
            reward = score_path(self.setup.net, arch, self.calib_batches.next()[0], val_x, val_y)
            self._update(actions, masks, reward)
            rewards.append(reward)
        return float(np.mean(rewards))

    def _memory_error(self) -> AgentError:
        return AgentError(f"enas ran out of memory on {self.setup.device} at batch {self.batch_size}; "
                          f"pass a smaller one, e.g. --hparams '{{batch_size: {max(2, self.batch_size // 2)}}}'")

    def preferred(self) -> Any:
        """The architecture ENAS returns now: the controller's most likely one."""
        return self.sample(greedy=True)[0]

    def learn(self, episodes: int) -> None:
        for _ in range(episodes):
            with charged(self.context.charge_seconds, self.setup, self.seed + self.episodes_done):
                mean_reward = out_of_memory_as(self._round, self.setup.device, self._memory_error)
            play(self.env, self.preferred())
            self.episodes_done += 1
            if self._record is not None:
                self._record("enas/reward", mean_reward)
                self._record("enas/baseline", self.baseline)

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Shared weights, controller, optimizers, generators, batch streams and baseline, atomically."""
        state = {"net": self.setup.net.state_dict(), "trainer": self.trainer.state_dict(),
                 "controller": self.controller.state_dict(), "controller_opt": self.controller_opt.state_dict(),
                 "generator": self.generator.get_state(), "calib": self.calib_batches.state_dict(),
                 "val": self.val_batches.state_dict(), "baseline": self.baseline, "reward_var": self.reward_var,
                 "episodes_done": self.episodes_done}
        atomic_write(path, lambda f: torch.save(state, f))

    def load(self, path: str | Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)  # CPU first: generator states must stay there
        self.setup.net.load_state_dict(state["net"])
        self.trainer.load_state_dict(state["trainer"])
        self.controller.load_state_dict(state["controller"])
        self.controller_opt.load_state_dict(state["controller_opt"])
        self.generator.set_state(state["generator"])
        self.calib_batches.load_state_dict(state["calib"])
        self.val_batches.load_state_dict(state["val"])
        self.baseline, self.reward_var = state["baseline"], float(state["reward_var"])
        self.episodes_done = int(state["episodes_done"])
