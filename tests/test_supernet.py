"""Supernets (layer chain, cell) and the supernet evaluator.

Paths must be the stand-alone networks with shared weights (parameter counts agree), batch
norm must be recalibrated per path, DARTS's relaxation and derivation must follow the space's
rules, and the evaluator must train once, store, reload, and charge its seconds exactly once.
Budgets are tiny: one epoch on a tenth of the training split.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas_gym.config import ConfigError, load_config
from nas_gym.data import load_dataset
from nas_gym.evaluators import make_evaluator
from nas_gym.evaluators.supernet import SupernetEvaluator
from nas_gym.spaces.cell.space import Cell
from nas_gym.spaces.layer_chain.chain import Chain
from nas_gym.spaces.supernet.base import score_path
from nas_gym.spaces.supernet.layers import set_bn_mode

SPACES = {
    "chain-1d": ("mnist1d", {}),
    "chain-2d": ("digits", {}),
    "cell-1d": ("mnist1d-cell", {}),
    "cell-2d": ("mnist1d-cell", {"data.name": "digits", "space.channels": 4, "space.stages": 2}),
}


def supernet(name: str, seed: int = 0):
    preset, overrides = SPACES[name]
    cfg = load_config(preset, overrides)
    space = cfg.search_space()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cfg, space, space.build_supernet(cfg.input_shape, cfg.num_classes)


@pytest.mark.parametrize("name", SPACES, ids=list(SPACES))
def test_paths_are_the_stand_alone_networks(name):
    """Same parameter count as the network ``build_model`` builds, and logits of the right shape."""
    cfg, space, net = supernet(name)
    rng = np.random.default_rng(0)
    x = torch.randn(4, *cfg.input_shape, generator=torch.Generator().manual_seed(0))
    for _ in range(12):
        arch = space.sample(rng)
        with torch.device("meta"):
            model = space.build_model(arch, cfg.input_shape, cfg.num_classes)
        assert net.count_params(arch) == sum(p.numel() for p in model.parameters()), arch.text()
        assert net(x, arch).shape == (4, cfg.num_classes)


def test_a_one_layer_path_computes_its_stand_alone_network():
    """Copying the path's slices into the stand-alone conv3-16 network gives the same logits."""
    cfg, space, net = supernet("chain-1d")
    arch = Chain.parse("conv3-16")
    model = space.build_model(arch, cfg.input_shape, cfg.num_classes)
    layer = net.layers[0]["conv3s1"]
    with torch.no_grad():
        model[0][0].weight.copy_(layer.weight[:16])
        model[0][1].weight.copy_(layer.bn.weight[:16])
        model[0][1].bias.copy_(layer.bn.bias[:16])
        model[-1].weight.copy_(net.head.weight[:, :16])
        model[-1].bias.copy_(net.head.bias)
    x = torch.randn(8, *cfg.input_shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(net(x, arch), model.train()(x))


@pytest.mark.parametrize("name", SPACES, ids=list(SPACES))
def test_calibrated_batch_norm_reproduces_the_batch_statistics(name):
    """Scoring mode (statistics recorded on a batch, folded into the convolutions) gives on that
    batch what training mode (the batch's own statistics) gives."""
    cfg, space, net = supernet(name)
    x = torch.randn(32, *cfg.input_shape, generator=torch.Generator().manual_seed(2))
    arch = space.sample(np.random.default_rng(3))
    net.eval()
    set_bn_mode(net.norms, "calibrate")
    expected = net(x, arch)
    set_bn_mode(net.norms, "eval")
    torch.testing.assert_close(net(x, arch), expected, rtol=1e-3, atol=1e-4)


def test_scores_do_not_depend_on_what_was_scored_before():
    cfg, space, net = supernet("cell-1d")
    gen = torch.Generator().manual_seed(4)
    calib, val = torch.randn(64, *cfg.input_shape, generator=gen), torch.randn(50, *cfg.input_shape, generator=gen)
    labels = torch.randint(0, 10, (50,), generator=gen)
    a, b = space.sample(np.random.default_rng(5)), space.sample(np.random.default_rng(6))
    first = score_path(net, a, calib, val, labels)
    score_path(net, b, calib, val, labels)
    assert score_path(net, a, calib, val, labels) == first
    assert all(bn.mode == "train" for bn in net.norms)


def test_cell_relaxation_with_one_hot_weights_is_the_path():
    _, space, net = supernet("cell-1d")
    cell = Cell.parse("|conv3~0|+|skip~0|conv1~1|+|avgpool3~0|conv3~1|skip~2|")
    weights = torch.nn.functional.one_hot(torch.tensor(cell.ops), 5).float()
    x = torch.randn(8, 1, 40, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(net.forward_mixed(x, weights), net(x, cell))
    assert net.derive(weights.numpy()) == cell


def test_chain_relaxation_runs_every_choice_and_derives_valid_chains():
    cfg, space, net = supernet("chain-1d")
    rows, cols = net.decision_shape
    assert (rows, cols) == (space.max_depth, len(space.ops) + 1) and net.choices[-1] == "identity"
    out = net.forward_mixed(torch.randn(4, *cfg.input_shape), torch.full((rows, cols), 1.0 / cols))
    assert out.shape == (4, cfg.num_classes)
    pools = [space.ops.index(op) for op in space.ops if op.kind in ("maxpool", "avgpool")]
    favour_pools = np.zeros((rows, cols))
    favour_pools[:, pools[0]] = 1.0
    chain = net.derive(favour_pools)
    assert space.violation(chain) is None and len(chain) == space.max_depth  # no pool after pool: others fill in
    favour_identity = np.zeros((rows, cols))
    favour_identity[:, -1] = 1.0
    favour_identity[:, 3] = 0.5
    assert net.derive(favour_identity) == Chain((space.ops[3],) * space.min_depth)  # depth from identity


# -- the evaluator -------------------------------------------------------------------------------
def tiny_config(tmp_path, preset="mnist1d-cell", **extra):
    return load_config(preset, {"evaluator.kind": "supernet", "evaluator.cache": str(tmp_path / "cache.sqlite"),
                                "evaluator.supernet_epochs": 1, "evaluator.supernet_val_samples": 100,
                                "data.train_fraction": 0.1, **extra})


def test_config_accepts_supernet_and_names_a_bad_budget():
    assert load_config("mnist1d-tiny", {"evaluator.kind": "supernet"}).evaluator.supernet_epochs >= 1
    with pytest.raises(ConfigError, match="supernet_epochs"):
        load_config("mnist1d-tiny", {"evaluator.kind": "supernet", "evaluator.supernet_epochs": 0})


def test_evaluator_trains_once_stores_and_charges_once(tmp_path):
    cfg = tiny_config(tmp_path)
    evaluator = make_evaluator(cfg)
    assert isinstance(evaluator, SupernetEvaluator)
    space = evaluator.space
    archs = [space.sample(np.random.default_rng(s)) for s in range(5)]
    results = evaluator.evaluate_many(archs + archs[:2])
    assert all(r.ok and 0.0 <= r.val_acc <= 1.0 for r in results)
    assert [r.val_acc for r in results[5:]] == [r.val_acc for r in results[:2]]
    assert (evaluator.stats.evaluations, evaluator.stats.cache_hits) == (7, 2)
    trained = evaluator.train_seconds
    assert trained > 0 and evaluator.stats.train_seconds >= trained
    assert evaluator.store is not None and evaluator.store.parent == tmp_path / "supernets" and evaluator.store.is_file()

    again = SupernetEvaluator(cfg)
    again._train = lambda: pytest.fail("a stored supernet must be loaded, not trained again")
    assert [r.val_acc for r in again.evaluate_many(archs)] == [r.val_acc for r in results[:5]]
    assert again.stats.train_seconds >= trained  # a new run is charged the stored training time

    resumed = SupernetEvaluator(cfg)  # a resumed search: its state says the supernet was charged
    resumed.load_state(again.state())
    before = resumed.stats.train_seconds
    resumed.evaluate(archs[0])
    assert 0 < resumed.stats.train_seconds - before < trained  # the scoring only, not the training again


def test_another_budget_is_another_supernet(tmp_path):
    a, b = tiny_config(tmp_path), tiny_config(tmp_path, **{"evaluator.supernet_epochs": 2})
    assert SupernetEvaluator(a).store != SupernetEvaluator(b).store


def test_too_many_params_fail_as_in_training(tmp_path):
    evaluator = SupernetEvaluator(tiny_config(tmp_path, **{"train.max_params": 100}), store=None)
    result = evaluator.evaluate(evaluator.space.sample(np.random.default_rng(0)))
    assert not result.ok and result.reason.startswith("too_many_params")


def test_training_lifts_scores_above_chance(tmp_path):
    """Three epochs of single-path training on mnist1d-tiny: random chains score well above the
    10% an untrained supernet gives."""
    cfg = tiny_config(tmp_path, "mnist1d-tiny", **{"evaluator.supernet_epochs": 3, "data.train_fraction": 0.5})
    evaluator = SupernetEvaluator(cfg, data=load_dataset(cfg.data), store=None)
    rng = np.random.default_rng(0)
    scores = [r.val_acc for r in evaluator.evaluate_many([evaluator.space.sample(rng) for _ in range(20)])]
    assert np.mean(scores) > 0.2
