"""The cell space: text form, canonical keys (pruning and isomorphism), episodes, models, env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from nas_gym.config import load_config
from nas_gym.evaluators.synthetic import SyntheticEvaluator
from nas_gym.spaces.base import ArchitectureError, play_actions
from nas_gym.spaces.cell.space import CELL_OPS, EDGES, Cell, canonical, live_edges
from nas_gym.training.train import count_params

TEXT = "|conv3~0|+|skip~0|conv1~1|+|none~0|conv3~1|avgpool3~2|"


@pytest.fixture(scope="module")
def space():
    return load_config("mnist1d-cell").search_space()


def cell(*names: str) -> Cell:
    return Cell(tuple(CELL_OPS.index(n) for n in names))


def test_text_round_trip_and_errors(space):
    c = Cell.parse(TEXT)
    assert c.text() == TEXT and Cell.parse(c.text()) == c
    for bad in ("|conv3~0|", "|conv9~0|+|skip~0|conv1~1|+|none~0|conv3~1|avgpool3~2|",
                "|conv3~1|+|skip~0|conv1~1|+|none~0|conv3~1|avgpool3~2|"):
        with pytest.raises(ArchitectureError, match="cannot parse|every edge"):
            Cell.parse(bad)
    with pytest.raises(ArchitectureError, match="not in the search space"):
        space.validate(Cell((1, 2)))


def test_distinct_networks_count(space):
    """5^6 cells; merging cells of one function and parameters leaves 5,044 networks."""
    keys = {c.key() for c in space.enumerate()}
    assert space.size() == 15_625 and len(keys) == 5_044 == len(space.distinct())


def test_pruning_merges_cut_off_edges():
    # node 1 feeds nothing that reaches the output: its edge is dead
    a = cell("conv3", "none", "none", "skip", "none", "none")
    b = cell("conv1", "none", "none", "skip", "none", "none")
    assert live_edges(a.ops) == [False, False, False, True, False, False]
    assert a.key() == b.key() != cell("conv3", "none", "none", "conv3", "none", "none").key()
    # no path from input to output at all: every such cell is the zero network
    assert cell("conv3", "conv3", "conv3", "none", "none", "none").key() == cell(*["none"] * 6).key()


def test_isomorphic_cells_share_a_key():
    a = cell("conv3", "conv1", "none", "skip", "avgpool3", "conv3")  # 1 <- conv3, 2 <- conv1
    b = cell("conv1", "conv3", "none", "skip", "conv3", "avgpool3")  # nodes 1 and 2 swapped
    assert a.key() == b.key() and canonical(a) == canonical(b)
    joined = cell("conv3", "conv1", "skip", "skip", "avgpool3", "conv3")  # edge 1 -> 2: no swap
    swapped = cell("conv1", "conv3", "skip", "skip", "conv3", "avgpool3")
    assert joined.key() != swapped.key()


def test_equal_keys_build_equal_networks(space):
    a = cell("conv3", "conv1", "none", "skip", "avgpool3", "conv3")
    b = cell("conv1", "conv3", "none", "skip", "conv3", "avgpool3")
    x = torch.randn(4, 1, 40)
    outs = []
    for c in (a, b):
        torch.manual_seed(0)
        model = space.build_model(c, (1, 40), 10).eval()
        outs.append(model(x))
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("shape", [(1, 40), (1, 8, 8), (3, 32, 32)], ids=["1d", "digits", "cifar"])
def test_builds_on_1d_and_2d(space, shape):
    c = Cell.parse(TEXT)
    model = space.build_model(c, shape, 10)
    assert model(torch.randn(2, *shape)).shape == (2, 10)
    assert count_params(model) > 0 and space.count_flops(c, shape, 10) > 0
    zero = space.build_model(cell(*["none"] * 6), shape, 10)
    assert zero(torch.randn(2, *shape)).shape == (2, 10)


def test_flops_grow_with_convolutions(space):
    light = cell("skip", "skip", "skip", "skip", "skip", "skip")
    heavy = cell(*["conv3"] * 6)
    assert space.count_flops(heavy, (1, 40), 10) > space.count_flops(light, (1, 40), 10)


def test_episode_rules(space):
    partial = space.empty()
    for step, action in enumerate([3, 1, 2, 0, 3, 4]):
        assert space.mask(partial).all() and space.observe(partial)[-1] == step / len(EDGES)
        partial, done = space.step(partial, action)
        assert done == (step == len(EDGES) - 1)
    assert partial == Cell.parse(TEXT)
    assert play_actions(space, space.actions_of(partial)) == (partial, True)
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = space.sample(rng)
        m = space.mutate(c, rng)
        assert sum(x != y for x, y in zip(c.ops, m.ops, strict=True)) == 1 and m in space.neighbours(c)


def make_cell_env(**kwargs):
    cfg = load_config("mnist1d-cell")
    return gym.make("NasGym/Cell-v0", config=cfg, evaluator=SyntheticEvaluator(cfg.search_space(), seed=0), **kwargs)


def test_env_checkers_and_episode_length():
    env = make_cell_env()
    gym_check_env(env.unwrapped)
    sb3_check_env(make_cell_env().unwrapped)
    obs, _ = env.reset(seed=0)
    assert env.action_space.n == 5 and obs.shape == (31,)
    for t in range(6):
        obs, reward, terminated, truncated, info = env.step(3)
        assert terminated == (t == 5)
    assert info["arch"] == cell(*["conv3"] * 6).text() and 0.0 <= reward <= 1.0
