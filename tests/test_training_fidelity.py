"""Real training at a chosen number of epochs (``TrainingEvaluator.evaluate_at``): what lets the
multi-fidelity agents (sh, asha, hyperband, bohb) search with real training, not only on tables."""

from __future__ import annotations

import gymnasium as gym
import pytest

import nas_gym  # noqa: F401  (registers the env)
from nas_gym.config import ConfigError, load_config
from nas_gym.envs.nas_env import FidelityError
from nas_gym.evaluators.base import FidelityEvaluator
from nas_gym.evaluators.training import TrainingEvaluator
from nas_gym.storage.cache import MemoryCache
from tests.test_evaluators import A, B, fake_data


def make(epochs: int = 3, cache: MemoryCache | None = None) -> TrainingEvaluator:
    cfg = load_config("mnist1d-tiny", {"train.epochs": epochs, "evaluator.cache": None})
    return TrainingEvaluator(cfg, data=fake_data(), cache=cache or MemoryCache())


def test_a_shorter_budget_is_a_run_of_that_many_epochs_cached_apart_on_one_clock():
    ev = make(3)
    assert isinstance(ev, FidelityEvaluator) and ev.max_epochs == 3
    one = ev.evaluate_at(A, 1)
    alone = make(1).evaluate(A)  # the same recipe with train.epochs 1, trained by itself
    assert (one.val_acc, one.train_loss, one.params) == (alone.val_acc, alone.train_loss, alone.params)
    assert one.fidelity == 1.0
    paid = ev.stats.train_seconds
    assert paid == pytest.approx(one.train_seconds) and ev.stats.evaluations == 1
    assert ev.evaluate_at(A, 1) == one and ev.stats.train_seconds == paid, "asked again: a cache hit, free"
    full = ev.evaluate_at(A, 3)
    assert full == ev.evaluate(A) and full.fidelity == 3.0
    assert ev.stats.train_seconds == pytest.approx(paid + full.train_seconds), "a longer run is paid in full"
    assert ev.evaluate_at(B, None).fidelity == 3.0  # None: the recipe's own budget
    with pytest.raises(ConfigError, match=r"epochs=4: training answers after 1\.\.3 epochs"):
        ev.evaluate_at(A, 4)


def test_the_env_answers_at_a_chosen_epoch_with_real_training(tmp_path):
    env = gym.make("NasGym/LayerChain-v0", config=load_config("mnist1d-tiny", {"train.epochs": 2}), evaluator=make(2))
    assert env.get_wrapper_attr("fidelity_epochs")() == 2
    env.reset(seed=0, options={"epochs": 1})
    info = {}
    for action in env.unwrapped.space.actions_of(A):
        _, _, done, _, info = env.step(action)
    assert done and info["epochs"] == 1
    with pytest.raises(FidelityError, match="1..2 epochs"):
        env.reset(options={"epochs": 3})


class Record(gym.Wrapper):
    """Notes (architecture, epochs, validation accuracy) of every finished episode."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.seen: list[tuple[str, int, float]] = []

    def step(self, action):
        out = self.env.step(action)
        if out[2]:
            self.seen.append((out[4]["arch"], out[4]["epochs"], out[4]["val_acc"]))
        return out


@pytest.mark.parametrize("agent", ["sh", "asha", "hyperband", "bohb", "smac_hb"])
def test_each_multi_fidelity_agent_searches_a_users_space_with_real_training(monkeypatch, agent):
    """The example MLP space (examples/mlp_space.py), trained for real on a small dataset: several
    fidelities asked for, each answered by a run of that many epochs, and the same seed the same run."""
    from pathlib import Path

    from nas_gym.agents.base import resolve_agent
    from nas_gym.envs.nas_env import NasEnv
    from tests.test_multi_fidelity_agents import HPARAMS

    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)  # the example preset names its space by a path relative to the checkout
    cfg = load_config(str(root / "examples" / "mlp_space.yaml"), {"train.epochs": 4, "evaluator.cache": None})
    runs = []
    for seed in (0, 0, 1):
        evaluator = TrainingEvaluator(cfg, data=fake_data(), cache=MemoryCache())
        env = NasEnv(cfg, evaluator=evaluator)
        recorded = Record(env)
        resolve_agent(agent)(recorded, seed=seed, hparams=HPARAMS[agent]).learn(14)
        seen = recorded.seen
        assert len({e for _, e, _ in seen}) > 1, "several fidelities"
        short = next((a, e, v) for a, e, v in seen if e < 4)
        alone = TrainingEvaluator(load_config(cfg, {"train.epochs": short[1]}), data=fake_data(), cache=MemoryCache())
        assert alone.evaluate(env.space.parse(short[0])).val_acc == short[2]
        runs.append(seen)
    assert runs[0] == runs[1] and runs[0] != runs[2]
