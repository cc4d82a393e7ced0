"""Greedy search: textbook growth on the layer chain, exact on additive problems, budgets,
restarts, seeds and checkpoints. All on the instant synthetic evaluator."""

from __future__ import annotations

import gymnasium as gym
import pytest

from nas_gym.agents.base import resolve_agent
from nas_gym.agents.greedy import Greedy
from nas_gym.config import load_config
from nas_gym.evaluators.synthetic import SyntheticEvaluator
from nas_gym.spaces.layer_chain.chain import Chain


class Played(gym.Wrapper):
    """Records the text of every architecture the agent had evaluated."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.archs: list[str] = []

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            self.archs.append(info["arch"])
        return obs, reward, terminated, truncated, info


def make(preset: str = "mnist1d-tiny", problem: int = 0, overrides: dict | None = None) -> tuple[Played, SyntheticEvaluator]:
    cfg = load_config(preset, overrides)
    evaluator = SyntheticEvaluator(cfg.search_space(), seed=problem)
    return Played(gym.make("NasGym/LayerChain-v0", config=cfg, evaluator=evaluator)), evaluator


def textbook_greedy(evaluator: SyntheticEvaluator) -> tuple[Chain, set[str]]:
    """Grow a chain one layer at a time, keeping the best extension, until none beats stopping;
    also every chain it scored."""
    space, prefix, scored = evaluator.space, Chain(()), set()
    current = None
    while len(prefix) < space.max_depth:
        mask = space.mask(prefix)
        options = [prefix.append(op) for i, op in enumerate(space.ops) if mask[i]]
        scored.update(o.text() for o in options)
        best = max(options, key=evaluator.score)
        if current is not None and evaluator.score(best) <= current:
            break
        prefix, current = best, evaluator.score(best)
    return prefix, scored


@pytest.mark.parametrize("problem", [0, 1, 2, 3])
def test_first_pass_is_textbook_greedy_growth(problem):
    env, evaluator = make(problem=problem)
    expected, scored = textbook_greedy(evaluator)
    agent = Greedy(env, seed=0)
    agent.learn(len(scored))
    assert set(env.archs) == scored and len(env.archs) == len(scored)  # each chain played once
    assert agent.best == expected.text()


def test_on_cells_returns_the_best_it_evaluated():
    """On the cell space the synthetic score adds up the raw edges, while the functional key merges
    cells of one function whose raw edges differ; greedy rightly reuses a key's first score, so the
    one-pass exactness shown on chains above does not carry over. What must hold: one pass plays
    5 + 5 x 4 distinct keys and returns the best of them."""
    env, evaluator = make("mnist1d-cell", 5)
    agent = Greedy(env, seed=0)
    agent.learn(25)
    best = max(agent.known.values())
    assert agent.known[env.unwrapped.space.parse(agent.best).key()] == best
    assert len(agent.known) <= 25


def test_runs_exactly_the_episodes_asked_and_restarts_by_seed():
    runs = {}
    for seed in (0, 0, 1):
        env, _ = make(problem=2)
        agent = resolve_agent("greedy")(env, seed=seed)
        agent.learn(40)
        agent.learn(25)
        assert len(env.archs) == 65 and agent.episodes_done == 65
        runs.setdefault(seed, []).append(env.archs)
    assert runs[0][0] == runs[0][1]
    assert runs[0][0] != runs[1][0]  # the first pass is the same; the restarts are drawn from the seed


def test_checkpoint_resumes_the_same_search(tmp_path):
    straight, _ = make(problem=4)
    Greedy(straight, seed=3).learn(50)
    first, _ = make(problem=4)
    agent = Greedy(first, seed=3)
    agent.learn(23)
    agent.save(tmp_path / "greedy.json")
    second, _ = make(problem=4)
    resumed = Greedy(second, seed=3)
    resumed.load(tmp_path / "greedy.json")
    resumed.learn(27)
    assert first.archs + second.archs == straight.archs


def test_a_space_it_has_exhausted_keeps_playing_its_best():
    env, evaluator = make(overrides={"space.ops": ["conv3-16", "maxpool"], "space.max_depth": 2})
    agent = Greedy(env, seed=0)
    agent.learn(12)
    best = max(evaluator.space.enumerate(), key=evaluator.score)
    assert len(env.archs) == 12 and set(env.archs) == {a.text() for a in evaluator.space.enumerate()}
    assert env.archs[-1] == best.text() == agent.best


@pytest.mark.slow
def test_greedy_appears_in_compare_beside_random(tmp_path):
    from nas_gym.runs.compare import run_comparison

    summaries, scores = run_comparison(load_config("mnist1d-tiny"), ["greedy", "random"], budget=15, seeds=2,
                                       logdir=tmp_path, evaluator="synthetic")
    assert [s.agent for s in summaries] == ["greedy", "random"] and scores is not None
    assert all(s.curves.shape == (2, 15) and s.regret is not None for s in summaries)
