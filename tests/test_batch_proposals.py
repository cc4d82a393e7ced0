"""With N workers, agents that think in whole architectures hand the evaluator N at a time.

The counting evaluator below wraps the instant synthetic one and records the size of every
batch it is asked for, so the tests see exactly what a process pool or Ray would receive.
"""

from __future__ import annotations

import gymnasium as gym
import pytest
from typer.testing import CliRunner

import nas_gym  # noqa: F401  (registers the env)
from nas_gym.agents.base import resolve_agent
from nas_gym.cli import app
from nas_gym.config import load_config
from nas_gym.evaluators import make_evaluator
from nas_gym.evaluators.prefetch import PrefetchEvaluator
from nas_gym.spaces.layer_chain.chain import Chain


class Counting:
    """The synthetic evaluator, recording the batches it receives."""

    def __init__(self, config):
        self.inner = make_evaluator(config, "synthetic")
        self.space, self.num_classes, self.stats = self.inner.space, self.inner.num_classes, self.inner.stats
        self.batches: list[list[str]] = []

    def evaluate(self, arch):
        return self.evaluate_many([arch])[0]

    def evaluate_many(self, archs):
        self.batches.append([a.text() for a in archs])
        return self.inner.evaluate_many(archs)


def run(agent: str, batch: int, episodes: int) -> tuple[Counting, list[str]]:
    cfg = load_config("mnist1d-tiny")
    counting = Counting(cfg)
    env = gym.make("NasGym/LayerChain-v0", config=cfg, evaluator=PrefetchEvaluator(counting, batch_size=batch), seed=0)
    played: list[str] = []
    step = env.step

    def recording_step(action):
        out = step(action)
        if out[2] or out[3]:
            played.append(out[4]["arch"])
        return out

    env.step = recording_step
    # Q-learning's schedule by episodes: in this small space, unique models would stall it
    hparams = {"count_unique": False} if agent == "qlearning" else None
    resolve_agent(agent)(env, seed=0, hparams=hparams).learn(episodes)
    return counting, played


@pytest.mark.parametrize("agent", ["evolution", "qlearning"])
def test_agents_propose_a_batch_per_worker_count(agent):
    counting, played = run(agent, batch=3, episodes=10)
    assert [len(b) for b in counting.batches] == [3, 3, 3, 1]  # the last batch is what is left
    assert [a for b in counting.batches for a in b] == played  # every proposal is played, in order


def test_random_search_queues_several_per_worker_and_draws_the_same():
    """Random draws do not depend on results: it hands the workers QUEUE_PER_WORKER each, so a
    worker never idles behind a slow network, and plays exactly what one worker would."""
    from nas_gym.agents.random_search import QUEUE_PER_WORKER

    counting, played = run("random", batch=3, episodes=30)
    assert [len(b) for b in counting.batches] == [3 * QUEUE_PER_WORKER, 3 * QUEUE_PER_WORKER, 30 - 6 * QUEUE_PER_WORKER]
    assert [a for b in counting.batches for a in b] == played
    assert played == run("random", batch=1, episodes=30)[1]


@pytest.mark.parametrize("agent", ["random", "evolution", "qlearning"])
def test_one_worker_evaluates_one_at_a_time(agent):
    counting, played = run(agent, batch=1, episodes=5)
    assert [len(b) for b in counting.batches] == [1] * 5 and len(played) == 5


def test_qlearning_batches_still_learn():
    """Planning from one Q-table per batch must not break learning: with the greedy phase of a
    short schedule, late episodes beat the exploring ones on the synthetic score."""
    counting, played = run("qlearning", batch=4, episodes=200)
    score = {a: counting.inner.evaluate(Chain.parse(a)).val_acc for a in set(played)}
    first, last = [score[a] for a in played[:50]], [score[a] for a in played[-50:]]
    assert sum(last) / 50 > sum(first) / 50 + 0.05


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["process", "ray"])
def test_search_with_two_workers_through_the_cli(tmp_path, backend):
    """Real training on a tiny budget, two workers, each backend, through the command line."""
    result = CliRunner().invoke(app, [
        "search", "--agent", "random", "--config", "mnist1d-tiny", "--episodes", "4", "--workers", "2",
        "--backend", backend, "--logdir", str(tmp_path / "runs"), "--set", "train.epochs=1",
        "--set", f"evaluator.cache={tmp_path / 'c.sqlite'}"])
    assert result.exit_code == 0, result.output
    assert "4 episodes, 4 evaluations" in result.output


@pytest.mark.slow
def test_a_search_stops_the_ray_it_started(tmp_path):
    """The search's evaluator is closed with its env: no Ray session (or process pool) outlives it."""
    import ray

    from nas_gym.runs.search import run_search

    assert not ray.is_initialized()
    cfg = load_config("mnist1d-tiny", {"evaluator.backend": "ray", "evaluator.workers": 2, "train.epochs": 1,
                                       "evaluator.cache": str(tmp_path / "c.sqlite")})
    summary = run_search(cfg, "random", 2, 0, tmp_path / "runs")
    assert summary.stats.evaluations == 2 and not ray.is_initialized()
