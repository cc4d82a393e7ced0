"""A REINFORCE controller (Zoph & Le, ICLR 2017), CleanRL-sized, in plain PyTorch.

An LSTM reads the layers chosen so far (one embedded action per step, starting from a
learned "start" token) and emits logits over the next layer; the env's action mask is
applied to the logits, so a forbidden layer has probability exactly zero and is never sent.
After each batch of episodes the policy takes one gradient step on

    loss = -(R - b) / s * sum_t log pi(a_t | a_<t) - entropy_coef * sum_t H(pi(. | a_<t))

where ``b`` is an exponential moving average of past rewards (decay 0.9, as Zoph & Le and the
NAS-Bench-201 baseline): the moving average removes most of the reward's variance without a
learned critic, which a budget of a few hundred episodes could not train anyway. ``s`` is the
matching moving standard deviation (``normalize_advantage``), so one learning rate suits
datasets whose accuracies spread over 0.5 or over 0.02.

Acting runs without gradients; the update replays the batch's stored actions and masks
through the (unchanged) policy. That costs one more forward pass per episode (microseconds
next to any evaluation) and means the state between updates is plain data: ``save`` writes it
and a resumed run continues exactly, even when ``learn`` stops mid-batch.

Randomness: the initial weights are drawn inside ``torch.random.fork_rng`` and sampling uses
the agent's own ``torch.Generator``, so torch's global generator is neither read nor changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from nas_gym.agents.base import AgentError, BaseAgent, make_hparams, mask_source
from nas_gym.storage.atomic import atomic_write
from nas_gym.training.train import forked_rng, seed_torch

# Logit of a forbidden action. Not -inf: 0 * -inf is NaN in the entropy; exp(-1e9) is exactly
# 0 in float32, so the action still has probability zero (sb3-contrib's MaskableCategorical does the same).
_MASKED_LOGIT = -1e9
# Floor of the reward scale when normalising advantages: rewards are accuracies, and gaps below
# a hundredth are mostly evaluation noise, which should not be amplified into full-size steps.
_MIN_STD = 0.01


@dataclass(frozen=True)
class ReinforceArgs:
    """Hyperparameters. The defaults were chosen on 12 synthetic problems (300 episodes) and the
    mnist1d-tiny table (200 episodes, 12 seeds), for budgets of 100-1,000 episodes.

    :param learning_rate: Adam's step size on normalised advantages. Above Zoph & Le's 6e-4 because
        the budget is hundreds of episodes, not 12,800 networks; 0.005 and more made the policy
        settle on the first good chain it met (mean regret 2-4x higher on the synthetic problems).
    :param hidden_size: LSTM width (Zoph & Le: 35 units in 2 layers; one layer suffices for chains
        of at most a dozen choices).
    :param baseline_decay: the moving average's decay, 0.9: it follows the improving policy
        within about 10 episodes.
    :param entropy_coef: weight of the entropy bonus, which keeps the policy from collapsing on
        the first good chain it sees before it has compared it with others.
    :param batch_episodes: episodes per gradient step (Zoph & Le used many in parallel).
        1 updates after every episode, which a short budget needs.
    :param max_grad_norm: gradient norm clipping; keeps one lucky episode from saturating the logits.
    :param normalize_advantage: divide the advantage by a moving standard deviation of the rewards
        (same decay as the baseline). Accuracies of good chains differ by hundredths; without
        this the step size would depend on how spread out a dataset's accuracies happen to be.
    """

    learning_rate: float = 0.002
    hidden_size: int = 64
    baseline_decay: float = 0.9
    entropy_coef: float = 0.01
    batch_episodes: int = 1
    max_grad_norm: float = 1.0
    normalize_advantage: bool = True


class Controller(nn.Module):
    """The LSTM policy over op sequences. Its input at step t is the action taken at step t-1
    (index ``n_actions`` stands for the start of the chain)."""

    def __init__(self, n_actions: int, hidden_size: int) -> None:
        super().__init__()
        self.n_actions = n_actions
        self.embed = nn.Embedding(n_actions + 1, hidden_size)
        self.cell = nn.LSTMCell(hidden_size, hidden_size)
        self.head = nn.Linear(hidden_size, n_actions)

    def initial(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input token, h, c) for the start of an episode, batch size 1."""
        h = torch.zeros(1, self.cell.hidden_size)
        return torch.tensor([self.n_actions]), h, h.clone()

    def step(self, token: torch.Tensor, h: torch.Tensor, c: torch.Tensor, mask: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Masked log-probabilities of the next action, and the new LSTM state."""
        h, c = self.cell(self.embed(token), (h, c))
        logits = self.head(h).masked_fill(~mask, _MASKED_LOGIT)
        return torch.log_softmax(logits, dim=-1), h, c


@dataclass
class _Episode:
    """What the update needs of one episode: actions, the masks they were chosen under, the reward."""

    actions: list[int]
    masks: list[list[bool]]
    reward: float


class Reinforce(BaseAgent):
    """:param env: a NasGym env, possibly wrapped (masks are read through wrappers).
    :param seed: seeds the initial weights and the sampling generator.
    :param hparams: fields of :class:`ReinforceArgs`.
    :param logdir: unused; ``nas/baseline`` and ``nas/policy_entropy`` go through
        ``env.record_scalar`` when the env has it.
    """

    threads = 1  # a 64-unit LSTM on batch 1: a second thread only adds synchronisation

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        self.env = env
        self.args: ReinforceArgs = make_hparams(ReinforceArgs, hparams)
        if self.args.batch_episodes < 1 or self.args.hidden_size < 1 or not 0.0 <= self.args.baseline_decay < 1.0:
            raise AgentError(f"reinforce: need batch_episodes >= 1, hidden_size >= 1 and 0 <= baseline_decay < 1; "
                             f"got {self.args}")
        with forked_rng(torch.device("cpu")):
            seed_torch(seed, torch.device("cpu"))
            self.policy = Controller(int(env.action_space.n), self.args.hidden_size)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.args.learning_rate)
        self.generator = torch.Generator().manual_seed(seed)
        self.baseline: float | None = None
        self.reward_var = 0.0  # moving variance of the rewards around the baseline
        self.pending: list[_Episode] = []  # episodes of the current, unfinished batch
        self.episodes_done = 0
        self._masks = mask_source(env)
        self._record = self.context.record_scalar

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def _play(self) -> _Episode:
        """One episode through the env, sampling from the masked policy."""
        self.env.reset()
        ep = _Episode([], [], 0.0)
        with torch.no_grad():
            token, h, c = self.policy.initial()
            while True:
                mask = self._masks()
                if not mask.any():  # a broken mask: stop, and let the env do its documented thing
                    mask = np.zeros_like(mask)
                    mask[-1] = True
                logp, h, c = self.policy.step(token, h, c, torch.as_tensor(mask).unsqueeze(0))
                action = int(torch.multinomial(logp.exp(), 1, generator=self.generator).item())
                _, reward, terminated, truncated, _ = self.env.step(action)
                ep.actions.append(action)
                ep.masks.append(mask.tolist())
                token = torch.tensor([action])
                if terminated or truncated:
                    ep.reward = float(reward)
                    return ep

    def _log_prob_and_entropy(self, ep: _Episode) -> tuple[torch.Tensor, torch.Tensor]:
        token, h, c = self.policy.initial()
        log_prob, entropy = torch.zeros(()), torch.zeros(())
        for action, mask in zip(ep.actions, ep.masks, strict=True):
            logp, h, c = self.policy.step(token, h, c, torch.tensor([mask]))
            log_prob = log_prob + logp[0, action]
            entropy = entropy - (logp.exp() * logp).sum()
            token = torch.tensor([action])
        return log_prob, entropy

    def _update(self) -> None:
        """One policy-gradient step on the pending batch; the baseline then absorbs its rewards.

        The advantage is taken against the baseline *before* this batch, so an episode is not
        compared with itself; the very first batch sets the baseline (advantage 0), rather than
        pushing the policy toward whatever it happened to sample first."""
        batch, self.pending = self.pending, []
        rewards = [ep.reward for ep in batch]
        if self.baseline is None:
            self.baseline = float(np.mean(rewards))
        scale = max(self.reward_var ** 0.5, _MIN_STD) if self.args.normalize_advantage else 1.0
        loss = torch.zeros(())
        entropies = []
        for ep in batch:
            log_prob, entropy = self._log_prob_and_entropy(ep)
            advantage = (ep.reward - self.baseline) / scale
            loss = loss - advantage * log_prob - self.args.entropy_coef * entropy
            entropies.append(float(entropy.detach()) / len(ep.actions))
        self.optimizer.zero_grad()
        (loss / len(batch)).backward()
        nn.utils.clip_grad_norm_(self.policy.parameters(), self.args.max_grad_norm)
        self.optimizer.step()
        d = self.args.baseline_decay
        for r in rewards:
            self.reward_var = d * self.reward_var + (1.0 - d) * (r - self.baseline) ** 2
            self.baseline = d * self.baseline + (1.0 - d) * r
        if self._record is not None:
            self._record("nas/baseline", self.baseline)
            self._record("nas/policy_entropy", float(np.mean(entropies)))

    def learn(self, episodes: int) -> None:
        """Play ``episodes`` episodes, updating after every ``batch_episodes`` of them (counted
        across calls: a batch left unfinished by one call is completed by the next)."""
        with self._threads():
            for _ in range(episodes):
                self.pending.append(self._play())
                self.episodes_done += 1
                if len(self.pending) >= self.args.batch_episodes:
                    self._update()

    def action_probabilities(self, actions: list[int]) -> np.ndarray:
        """The policy's distribution over the next action after the chain ``actions`` (under the
        masks the env gives along it): for inspection and tests, it does not step the env."""
        space = self.context.space
        prefix = space.empty()
        with torch.no_grad():
            token, h, c = self.policy.initial()
            for action in [*actions, None]:
                mask = torch.as_tensor(space.mask(prefix)).unsqueeze(0)
                logp, h, c = self.policy.step(token, h, c, mask)
                if action is None:
                    return logp.exp()[0].numpy()
                prefix, _ = space.step(prefix, action)
                token = torch.tensor([action])
        raise AssertionError("unreachable")

    # -- checkpoints --------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Weights, optimizer, baseline, generator, counters and the unfinished batch, written
        atomically: a loaded agent continues as if it had never stopped."""
        state = {
            "version": 1,
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "baseline": self.baseline,
            "reward_var": self.reward_var,
            "episodes_done": self.episodes_done,
            "pending": [(ep.actions, ep.masks, ep.reward) for ep in self.pending],
        }
        atomic_write(path, lambda f: torch.save(state, f))

    def load(self, path: str | Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.baseline = state["baseline"]
        self.reward_var = float(state["reward_var"])
        self.episodes_done = int(state["episodes_done"])
        self.pending = [_Episode(list(a), [list(m) for m in masks], float(r)) for a, masks, r in state["pending"]]
