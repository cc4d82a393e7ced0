"""MetaQNN's tabular Q-learning (Baker et al., ICLR 2017), CleanRL-sized.

The agent builds a chain one layer at a time, epsilon-greedy over the actions the env's mask
allows, and learns from whole episodes: after each one it replays a sample of past episodes,
each backwards, so the terminal reward (the accuracy) reaches the first layer within one
replay. With gamma 1 the Q-value of a (prefix, layer) pair estimates the best accuracy still
reachable through it, which is what a search wants (not a discounted average).

The table is keyed by the observation's bytes: the env's observation encodes the whole prefix
(one-hot per position, depth, spatial size), so equal prefixes share one row. Only the actions
allowed in a state get an entry, as MetaQNN enumerated only legal transitions.

Where this differs from the paper: (1) the state is the whole prefix (the observation) rather
than MetaQNN's (layer type, depth, filter size, representation-size bucket), so the table is
larger but never merges prefixes that build different networks; (2) the reward is the
validation accuracy of the final (short) training, not the best validation accuracy over
epochs; (3) the schedule is scaled to the search's budget (MetaQNN's own 2,700 models when the
budget is 2,700). As in MetaQNN's code, the schedule counts unique models by default: a
re-sampled architecture costs no training (the evaluator's cache returns its stored result)
and does not advance epsilon (``count_unique``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from nas_gym.agents.base import BaseAgent, make_hparams, mask_source
from nas_gym.agents.epsilon_figure import AccuracyByEpsilon
from nas_gym.spaces.base import Architecture
from nas_gym.storage.atomic import atomic_write_text

# MetaQNN's schedule over its 2,700 models: long pure exploration, then a slow descent.
METAQNN_SCHEDULE: tuple[tuple[float, int], ...] = (
    (1.0, 1500), (0.9, 100), (0.8, 100), (0.7, 100),
    (0.6, 150), (0.5, 150), (0.4, 150), (0.3, 150), (0.2, 150), (0.1, 150),
)


@dataclass(frozen=True)
class QLearningArgs:
    """MetaQNN's numbers (Baker et al. 2017, section 4 and appendix).

    :param learning_rate: alpha; small because each episode is replayed many times.
    :param gamma: 1.0: only the terminal reward counts, so no reason to favour short chains.
    :param q_init: initial Q-value, 0.5: optimistic next to chance level (0.1 for 10 classes),
        so untried layers keep getting tried while epsilon is high.
    :param replay: past episodes sampled (with replacement, as MetaQNN) after each episode.
    :param epsilon_schedule: explicit ``(epsilon, episodes)`` stages; None means MetaQNN's shape
        scaled to the budget. Past the last stage the last epsilon stays.
    :param total_episodes: the budget the MetaQNN schedule is scaled to; None means the search's
        budget when a search sets the agent's ``total_episodes`` (``run_search`` does), else the
        episodes already done plus those asked of ``learn``.
    :param count_unique: epsilon advances with the number of distinct architectures evaluated
        (MetaQNN's models), not with episodes; a budget of N episodes may then end before the
        last stage if the agent re-samples. False charges repeats to the schedule.
    """

    learning_rate: float = 0.01
    gamma: float = 1.0
    q_init: float = 0.5
    replay: int = 128
    epsilon_schedule: tuple[tuple[float, int], ...] | None = None
    total_episodes: int | None = None
    count_unique: bool = True


def scaled_schedule(total: int, stages: Sequence[tuple[float, int]] = METAQNN_SCHEDULE) -> list[tuple[float, int]]:
    """``stages`` with episode counts scaled to sum to ``total`` exactly (largest remainders),
    so 2,700 reproduces MetaQNN's stages and a small budget keeps their proportions."""
    base = sum(n for _, n in stages)
    exact = [n * total / base for _, n in stages]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(stages)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return [(eps, n) for (eps, _), n in zip(stages, counts, strict=True)]


def epsilon_at(episode: int, stages: Sequence[tuple[float, int]]) -> float:
    """Epsilon of the 0-based ``episode`` under ``stages``; the last stage's value beyond them."""
    end = 0
    for eps, n in stages:
        end += n
        if episode < end:
            return float(eps)
    return float(stages[-1][0]) if stages else 0.0


@dataclass
class _Episode:
    """One finished episode as replay needs it: ``states`` has one more entry than ``actions``
    when the episode was truncated (the state to bootstrap from)."""

    states: list[bytes]
    actions: list[int]
    rewards: list[float]
    terminated: bool
    val_acc: float | None = None  # for MetaQNN's figure; not replayed, not saved
    arch: str = ""  # the text of what the episode built, to count unique models


class QLearning(BaseAgent):
    """:param env: a NasGym env, possibly wrapped. :param seed: seeds the agent's generator
    (exploration and tie-breaking). :param hparams: fields of :class:`QLearningArgs`.
    :param logdir: unused; epsilon goes through ``env.record_scalar`` when the env has it."""

    def __init__(self, env: gym.Env, seed: int = 0, hparams: dict[str, Any] | None = None,
                 logdir: Path | None = None) -> None:
        self.env = env
        values = dict(hparams or {})
        if values.get("epsilon_schedule") is not None:  # JSON / YAML give lists
            values["epsilon_schedule"] = tuple((float(e), int(n)) for e, n in values["epsilon_schedule"])
        self.args: QLearningArgs = make_hparams(QLearningArgs, values)
        self.rng = np.random.default_rng(seed)
        self.q: dict[bytes, dict[int, float]] = {}
        self.memory: list[_Episode] = []
        self.episodes_done = 0
        self.models_seen: set[str] = set()  # canonical keys of the architectures evaluated
        self._total = self.args.total_episodes
        self._total_fixed = self.args.total_episodes is not None
        self._masks = mask_source(env)
        self._record = self.context.record_scalar
        self.by_epsilon = AccuracyByEpsilon(self._record)

    # -- schedule -----------------------------------------------------------------------
    def schedule(self, total: int | None = None) -> list[tuple[float, int]]:
        """The epsilon stages in force for a run of ``total`` episodes."""
        if self.args.epsilon_schedule is not None:
            return list(self.args.epsilon_schedule)
        total = total if total is not None else (self._total or sum(n for _, n in METAQNN_SCHEDULE))
        return scaled_schedule(total)

    @property
    def total_episodes(self) -> int | None:
        """The budget the schedule is scaled to. Setting it before the first ``learn`` keeps the
        schedule of one ``learn(total)`` call when a search learns in chunks between checkpoints;
        an explicit ``total_episodes`` hyperparameter wins over it."""
        return self._total

    @total_episodes.setter
    def total_episodes(self, total: int | None) -> None:
        if self.args.total_episodes is None:
            self._total, self._total_fixed = total, total is not None

    @property
    def epsilon(self) -> float:
        """Epsilon of the next episode."""
        return epsilon_at(self.schedule_position, self.schedule())

    @property
    def schedule_position(self) -> int:
        """How far along the epsilon schedule the agent is: distinct architectures evaluated
        (``count_unique``, MetaQNN's models) or episodes."""
        return len(self.models_seen) if self.args.count_unique else self.episodes_done

    # -- acting and learning -------------------------------------------------------------
    def _row(self, state: bytes, mask: np.ndarray) -> dict[int, float]:
        row = self.q.get(state)
        if row is None:
            row = self.q[state] = {int(a): self.args.q_init for a in np.flatnonzero(mask)}
        return row

    def _act(self, row: dict[int, float], epsilon: float) -> int:
        actions = list(row)
        if self.rng.random() < epsilon:
            return actions[int(self.rng.integers(len(actions)))]
        best = max(row.values())
        ties = [a for a in actions if row[a] == best]
        return ties[int(self.rng.integers(len(ties)))] if len(ties) > 1 else ties[0]

    def _plan(self, epsilon: float) -> tuple[list[int], Architecture]:
        """One episode's actions, chosen from the Q-table without stepping the env (the env's
        ``observe`` gives the state of each prefix), and the architecture they build. Draws
        from the generator exactly as playing the episode would."""
        space = self.context.space
        arch, actions = space.empty(), []
        while True:
            action = self._act(self._row(space.observe(arch).tobytes(), space.mask(arch)), epsilon)
            actions.append(action)
            arch, complete = space.step(arch, action)
            if complete:
                return actions, arch

    def _play(self, epsilon: float, planned: Sequence[int] | None = None) -> _Episode:
        obs, _ = self.env.reset()
        ep = _Episode([], [], [], terminated=True)
        while True:
            state = np.asarray(obs, dtype=np.float32).tobytes()
            row = self._row(state, self._masks())
            if not row:  # nothing allowed: a broken mask; stop with whatever the env does
                row = {self.env.action_space.n - 1: self.args.q_init}
            action = planned[len(ep.actions)] if planned is not None else self._act(row, epsilon)
            obs, reward, terminated, truncated, info = self.env.step(action)
            ep.states.append(state)
            ep.actions.append(action)
            ep.rewards.append(float(reward))
            if terminated or truncated:
                if not terminated:
                    last = np.asarray(obs, dtype=np.float32).tobytes()
                    self._row(last, self._masks())
                    ep.states.append(last)
                ep.terminated = bool(terminated)
                ep.val_acc = info.get("val_acc")
                ep.arch = info.get("arch", "") if "val_acc" in info else ""  # invalid actions build nothing
                return ep

    def _update(self, ep: _Episode) -> None:
        """MetaQNN's update, backwards through one episode: Q(s,a) <- (1-alpha) Q(s,a) +
        alpha (r + gamma max_a' Q(s',a')), with no bootstrap after the terminal step.

        An action missing from its state's row (played only when a mask allowed nothing) is
        skipped: adding it would make a forbidden action a candidate for the greedy choice."""
        alpha, gamma = self.args.learning_rate, self.args.gamma
        n = len(ep.actions)
        for t in range(n - 1, -1, -1):
            row = self.q[ep.states[t]]
            a = ep.actions[t]
            if a not in row:
                continue
            if t + 1 < len(ep.states):
                nxt = self.q[ep.states[t + 1]]
                future = max(nxt.values()) if nxt else 0.0
            else:
                future = 0.0
            row[a] += alpha * (ep.rewards[t] + gamma * future - row[a])

    def learn(self, episodes: int) -> None:
        """Play ``episodes`` episodes, each followed by a replay update."""
        if not self._total_fixed:
            self._total = self.episodes_done + episodes
        stages = self.schedule(self._total)
        context = self.context
        batch = context.batch_size
        done = 0
        while done < episodes:
            # With N workers, N episodes are planned from the same Q-table and trained together
            # (as asynchronous MetaQNN-style searches do); with one, each is played as it is chosen.
            k = min(batch, episodes - done)
            epsilons = [epsilon_at(self.schedule_position + j, stages) for j in range(k)]
            plans = [self._plan(eps) for eps in epsilons] if k > 1 else [None]
            if k > 1:
                context.prefetch([arch for _, arch in plans])
            for eps, plan in zip(epsilons, plans, strict=True):
                self.memory.append(ep := self._play(eps, None if plan is None else plan[0]))
                for i in self.rng.integers(len(self.memory), size=self.args.replay):
                    self._update(self.memory[int(i)])
                self.episodes_done += 1
                if ep.arch:
                    self.models_seen.add(context.space.parse(ep.arch).key())
                self.by_epsilon.add(eps, ep.val_acc)
                if self._record is not None:
                    self._record("nas/epsilon", eps)
                if self.episodes_done == self._total:  # the schedule is spent: MetaQNN's figure
                    self.by_epsilon.write()
            done += k

    def greedy_actions(self, obs: np.ndarray) -> list[int]:
        """The allowed actions of best Q-value in the state ``obs`` (empty if never visited)."""
        row = self.q.get(np.asarray(obs, dtype=np.float32).tobytes(), {})
        if not row:
            return []
        best = max(row.values())
        return [a for a, v in row.items() if v == best]

    # -- checkpoints --------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Q-table, replay memory, episode counter and generator state as JSON (floats round-trip
        exactly, so a loaded agent continues as if never stopped). Written atomically."""
        keys = list(self.q)  # replayed states are rows of the table: store them by index
        index = {k: i for i, k in enumerate(keys)}
        state = {
            "version": 1,
            "episodes_done": self.episodes_done,
            "models_seen": sorted(self.models_seen),
            "total": self._total,
            "total_fixed": self._total_fixed,
            "rng": self.rng.bit_generator.state,
            "states": [k.hex() for k in keys],
            "q": [{str(a): v for a, v in self.q[k].items()} for k in keys],
            "memory": [{"states": [index[s] for s in ep.states], "actions": ep.actions, "rewards": ep.rewards,
                        "terminated": ep.terminated} for ep in self.memory],
            "by_epsilon": self.by_epsilon.state(),
        }
        atomic_write_text(path, json.dumps(state))

    def load(self, path: str | Path) -> None:
        state = json.loads(Path(path).read_text())
        self.episodes_done = int(state["episodes_done"])
        self.models_seen = set(state.get("models_seen", []))
        self._total = state["total"]
        self._total_fixed = bool(state.get("total_fixed", self.args.total_episodes is not None))
        self.rng.bit_generator.state = state["rng"]
        keys = [bytes.fromhex(k) for k in state["states"]]
        self.q = {k: {int(a): float(v) for a, v in row.items()} for k, row in zip(keys, state["q"], strict=True)}
        self.memory = [_Episode([keys[i] for i in ep["states"]], [int(a) for a in ep["actions"]],
                                [float(r) for r in ep["rewards"]], bool(ep["terminated"])) for ep in state["memory"]]
        self.by_epsilon.load(state.get("by_epsilon", []))

