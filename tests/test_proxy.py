"""Zero-cost proxies: definitions checked by hand, determinism, rank sanity, the evaluator, the env."""

import math
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from torch import nn

from nas_gym.config import ConfigError, load_config
from nas_gym.data import load_dataset
from nas_gym.evaluators import AVAILABLE_KINDS, make_evaluator
from nas_gym.evaluators import proxy as proxy_mod
from nas_gym.evaluators.proxy import (
    PROXY_NAMES,
    ProxyError,
    ProxyEvaluator,
    grad_norm,
    jacob_cov,
    logistic,
    snip,
    synflow,
)
from nas_gym.spaces.base import ArchitectureError
from nas_gym.spaces.layer_chain.chain import Chain

PRESETS = ("mnist1d-tiny", "digits")
# One architecture per preset that touches every op kind of its vocabulary.
RICH = {
    "mnist1d-tiny": "conv3-16|conv3-32s2|maxpool|conv5-16",
    "digits": "conv3-16|res3-32|maxpool|dropout0.2|conv3-32s2",
}
_evaluators: dict[tuple[str, str], ProxyEvaluator] = {}


@pytest.fixture(scope="module")
def datasets():
    return {p: load_dataset(load_config(p).data) for p in PRESETS}


@pytest.fixture(scope="module")
def get(datasets):
    """A shared evaluator per (preset, proxy): scores are deterministic, so sharing is safe,
    and it keeps the suite fast (calibration runs once per pair)."""

    def get_(preset: str, name: str) -> ProxyEvaluator:
        if (preset, name) not in _evaluators:
            _evaluators[preset, name] = ProxyEvaluator(load_config(preset), name, data=datasets[preset],
                                                       calibration_size=16)
        return _evaluators[preset, name]

    return get_


# -- definitions, on networks small enough to compute by hand ---------------------------------
def _linear_net(d: int = 6, k: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(1), nn.Linear(d, k))


def test_synflow_of_linear_net_is_sum_of_abs_weights():
    # R = sum_k (sum_i |W_ki| + |b_k|) for an all-ones input, so dR/dW = 1 and the score is sum |W|.
    net = _linear_net()
    before = [p.clone() for p in net.parameters()]
    assert synflow(net, (1, 6)) == pytest.approx(net[1].weight.abs().sum().item(), rel=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))  # scored on a copy


def test_snip_and_grad_norm_match_cross_entropy_gradient():
    net = _linear_net()
    x, y = torch.randn(8, 1, 6, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    w = net[1].weight
    # dL/dW of mean cross-entropy is (softmax - onehot)^T x / B
    g = (F.softmax(net(x), 1) - F.one_hot(y, 3)).T @ x.flatten(1) / len(y)
    assert snip(net, x, y) == pytest.approx((g * w).abs().sum().item(), rel=1e-5)
    assert grad_norm(net, x, y) == pytest.approx(g.norm().item(), rel=1e-5)
    assert w.grad is None and net.training  # nothing left behind on the caller's model


def test_jacob_cov_needs_distinct_activation_patterns():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(1), nn.Linear(8, 3))
    x = torch.randn(16, 1, 40)
    assert math.isfinite(jacob_cov(net, x))
    # Two identical inputs share every code: K has two equal rows, the network cannot tell
    # them apart, and the log-determinant is -inf.
    assert jacob_cov(net, torch.cat([x[:15], x[:1]])) == -math.inf
    with pytest.raises(ProxyError, match="no ReLU"):
        jacob_cov(nn.Sequential(nn.Flatten(1), nn.Linear(40, 3)), x)


def test_logistic_is_stable_and_monotone():
    zs = [-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4]
    values = [logistic(z) for z in zs]
    assert values == sorted(values) and values[0] == 0.0 and values[-1] == 1.0 and values[3] == 0.5


# -- every proxy on both kinds of network --------------------------------------------------------
@pytest.mark.parametrize("name", PROXY_NAMES)
@pytest.mark.parametrize("preset", PRESETS, ids=["conv1d", "conv2d"])
def test_every_proxy_is_finite(get, preset, name):
    ev = get(preset, name)
    for text in (RICH[preset], "conv3-16"):
        score = ev.score(Chain.parse(text))
        assert isinstance(score, float) and math.isfinite(score), text


@pytest.mark.parametrize("name", PROXY_NAMES)
def test_deterministic_and_leaves_global_rng_alone(datasets, name):
    cfg = load_config("digits")
    arch = Chain.parse(RICH["digits"])
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    a = ProxyEvaluator(cfg, name, data=datasets["digits"], calibration_size=2)
    b = ProxyEvaluator(cfg, name, data=datasets["digits"], calibration_size=2)
    assert a.score(arch) == b.score(arch)
    ra, rb = a.evaluate(arch), b.evaluate(arch)
    assert ra.ok and replace(ra, train_seconds=0.0) == replace(rb, train_seconds=0.0)
    assert a.evaluate(arch) == ra  # a repeat is the stored result
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(x, y) for x, y in zip(np.random.get_state(), np_state, strict=True))


# -- rank sanity --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["synflow", "params", "flops"])
@pytest.mark.parametrize("narrow, wide", [
    ("conv3-16", "conv3-32"),
    ("conv3-16|maxpool|conv3-16", "conv3-32|maxpool|conv3-32"),
], ids=["one-layer", "two-layers"])
def test_doubling_channels_raises_size_proxies(get, name, narrow, wide):
    ev = get("mnist1d-tiny", name)
    assert ev.score(Chain.parse(wide)) > ev.score(Chain.parse(narrow))


@pytest.mark.parametrize("preset", PRESETS, ids=["conv1d", "conv2d"])
def test_jacob_cov_prefers_deep_conv_net_to_pooling(get, preset):
    ev = get(preset, "jacob_cov")
    deep = ev.score(Chain.parse("conv3-32|conv3-32|conv3-32|conv3-32"))
    shallow = ev.score(Chain.parse("conv3-16|maxpool"))
    assert deep > shallow + 50  # the kernel's log-det grows with every unit that separates inputs
    failed = ev.evaluate(Chain.parse("maxpool"))  # no ReLU at all: NASWOT is undefined
    assert not failed.ok and "no ReLU" in failed.reason and failed.val_acc == 0.0


# -- the evaluator -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["synflow", "jacob_cov", "snip"])
def test_val_acc_in_unit_interval_and_ranked_as_raw_score(get, name):
    ev = get("mnist1d-tiny", name)
    rng = np.random.default_rng(7)
    archs = list({a.text(): a for a in (ev.space.sample(rng) for _ in range(20))}.values())
    results = ev.evaluate_many(archs)
    # Only a pooling-only chain may fail, and only for jacob_cov (no ReLU, see above).
    assert all(r.ok or (name == "jacob_cov" and "no ReLU" in r.reason) for r in results)
    ok = [(ev.raw_scores[r.arch], r.val_acc) for r in results if r.ok]
    assert len(ok) >= 15 and all(0.0 <= acc <= 1.0 for _, acc in ok)
    for raw_i, acc_i in ok:
        for raw_j, acc_j in ok:
            if raw_i < raw_j:
                assert acc_i <= acc_j
    acc = [a for _, a in ok]
    assert max(acc) - min(acc) > 0.3  # the space's spread is not squashed into one corner


def test_result_fields_and_charging(datasets):
    cfg = load_config("mnist1d-tiny")
    ev = ProxyEvaluator(cfg, "snip", data=datasets["mnist1d-tiny"], calibration_size=4)
    assert ev.stats.evaluations == 0 and ev.calibration_seconds > 0  # calibration is not charged
    arch = Chain.parse("conv3-32|maxpool|conv3-16")
    first, again = ev.evaluate(arch), ev.evaluate(arch)
    assert first == again and first.ok and first.train_seconds > 0
    model = ev.space.build_model(arch, (1, 40), 10)
    assert first.params == proxy_mod.count_params(model) and first.flops == ev.space.count_flops(arch, (1, 40), 10)
    s = ev.stats
    assert (s.evaluations, s.trained, s.cache_hits) == (2, 1, 1) and s.train_seconds == first.train_seconds
    assert ev.normalise(ev.score(arch)) == first.val_acc


def test_non_finite_score_and_too_many_params_fail(datasets, monkeypatch):
    cfg = load_config("mnist1d-tiny", {"train.max_params": 1000})
    ev = ProxyEvaluator(cfg, "grad_norm", data=datasets["mnist1d-tiny"], calibration_size=2)
    big = ev.evaluate(Chain.parse("conv3-32|conv3-32"))
    assert not big.ok and big.reason.startswith("too_many_params") and big.params > 1000
    monkeypatch.setattr(proxy_mod, "proxy_score", lambda *args: math.nan)
    nan = ev.evaluate(Chain.parse("conv5-16"))
    assert not nan.ok and nan.reason.startswith("non_finite_score") and nan.val_acc == 0.0
    monkeypatch.setattr(proxy_mod, "proxy_score", lambda *args: 1 / 0)
    boom = ev.evaluate(Chain.parse("conv3-16|avgpool"))
    assert not boom.ok and "ZeroDivisionError" in boom.reason
    assert ev.stats.failures == 3


def test_invalid_architecture_raises_before_any_scoring(get):
    ev = get("mnist1d-tiny", "params")
    before = ev.stats.evaluations
    with pytest.raises(ArchitectureError):
        ev.evaluate(Chain.parse("conv3-64"))  # not in the tiny vocabulary
    with pytest.raises(ArchitectureError):
        ev.evaluate_many([Chain.parse("conv3-16"), Chain.parse("maxpool|maxpool")])
    assert ev.stats.evaluations == before


@pytest.mark.parametrize("kind", ["proxy:nope", "proxy:", "proxy:SYNFLOW"])
def test_unknown_proxy_names_the_allowed_ones(kind):
    with pytest.raises(ConfigError, match="synflow, jacob_cov, snip, grad_norm, params, flops"):
        make_evaluator(load_config("mnist1d-tiny"), kind)


def test_make_evaluator_and_available_kinds(datasets):
    ev = make_evaluator(load_config("mnist1d-tiny"), "proxy:params", data=datasets["mnist1d-tiny"])
    assert isinstance(ev, ProxyEvaluator) and ev.name == "params" and ev.num_classes == 10
    assert {f"proxy:{n}" for n in PROXY_NAMES} <= set(AVAILABLE_KINDS)


def test_env_runs_on_proxy_reward():
    env = gym.make("NasGym/LayerChain-v0", config="mnist1d-tiny", evaluator="proxy:synflow")
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    space, ev = env.unwrapped.space, env.unwrapped.evaluator
    env.reset(seed=0)
    arch = Chain.parse("conv3-32|maxpool|conv3-16")
    for op in arch.ops:
        env.step(space.action_of(op))
    _, reward, terminated, _, info = env.step(space.stop_action)
    assert terminated and reward == pytest.approx(ev.normalise(ev.score(arch))) == pytest.approx(info["val_acc"])
