"""Local search: climbs to strictly better neighbours, restarts at local optima, never repeats an
evaluation, and resumes exactly; on the layer chain, the cell and a user's space."""

from __future__ import annotations

import gymnasium as gym
import pytest

from nas_gym.agents.base import AgentError, resolve_agent
from nas_gym.agents.local_search import LocalSearch
from tests.conftest import make_synthetic_env


class Spy(gym.Wrapper):
    """Records (arch, reward) of every finished episode."""

    def __init__(self, env):
        super().__init__(env)
        self.seen: list[tuple[str, float]] = []

    def step(self, action):
        out = self.env.step(action)
        if out[2] or out[3]:
            self.seen.append((out[4]["arch"], float(out[1])))
        return out


@pytest.mark.parametrize("preset", ["mnist1d-tiny", "mnist1d-cell"])
def test_climbs_by_neighbours_and_never_repeats(preset):
    env = Spy(make_synthetic_env(preset))
    agent = LocalSearch(env, seed=0)
    agent.learn(120)
    archs = [a for a, _ in env.seen]
    assert len(archs) == 120 == agent.episodes_done and len(set(archs)) == 120
    space = env.unwrapped.space
    # every evaluation after a start is a neighbour of the climb's best at the time
    best, jumps = None, 0
    for text, reward in env.seen:
        arch = space.parse(text)
        if best is None or arch.key() not in {n.key() for n in space.neighbours(best[0])}:
            best, jumps = (arch, reward), jumps + 1  # the start or a restart
        elif reward > best[1]:
            best = (arch, reward)  # a move: only to a strictly better neighbour
    assert agent.restarts >= 1  # 120 evaluations on these spaces reach at least one local optimum
    assert 1 <= jumps <= agent.restarts + 1  # nothing but neighbours between restarts


def test_reaches_a_local_optimum_whose_neighbours_are_all_worse():
    env = Spy(make_synthetic_env("mnist1d-tiny"))
    agent = LocalSearch(env, seed=1)
    while agent.restarts == 0:
        agent.step()
    scores = dict(env.seen)
    peak_text, peak = max(env.seen[:-1], key=lambda p: p[1])  # before the restart's evaluation
    space = env.unwrapped.space
    around = [scores[n.text()] for n in space.neighbours(space.parse(peak_text)) if n.text() in scores]
    assert around and all(r <= peak for r in around)


def test_same_seed_same_walk_and_resume_is_exact(tmp_path):
    a, b = Spy(make_synthetic_env()), Spy(make_synthetic_env())
    LocalSearch(a, seed=5).learn(60)
    first = LocalSearch(b, seed=5)
    first.learn(25)
    first.save(tmp_path / "ls.json")
    resumed = LocalSearch(b, seed=123)
    resumed.load(tmp_path / "ls.json")
    resumed.learn(35)
    assert a.seen == b.seen


def test_registered_and_checks_its_hyperparameters():
    assert resolve_agent("local") is LocalSearch
    with pytest.raises(AgentError, match="initial must be at least 1"):
        LocalSearch(make_synthetic_env(), hparams={"initial": 0})
    env = Spy(make_synthetic_env())
    LocalSearch(env, seed=0, hparams={"initial": 10}).learn(12)
    assert len({a for a, _ in env.seen}) == 12
