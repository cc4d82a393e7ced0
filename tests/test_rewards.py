"""Rewards against hand-computed values."""

import math

import numpy as np
import pytest

from nas_gym.config import RewardConfig
from nas_gym.evaluators.base import EvalResult
from nas_gym.rewards import cost_terms, reward


def ok(acc: float = 0.8, params: int = 2000, flops: int = 50_000) -> EvalResult:
    return EvalResult(arch="conv3-16", val_acc=acc, params=params, flops=flops, train_loss=0.5)


FAILED = EvalResult.failure("conv3-16", "nan_loss", params=2000, flops=50_000)

CASES = [
    ("accuracy", ok(0.8), RewardConfig(), 10, 0.8),
    ("accuracy-ignores-cost", ok(0.8, params=10**6), RewardConfig(), 10, 0.8),
    ("failure-chance-10", FAILED, RewardConfig(), 10, 0.1),
    ("failure-chance-100", FAILED, RewardConfig(), 100, 0.01),
    ("failure-explicit", FAILED, RewardConfig(failure_reward=-1.0), 10, -1.0),
    ("failure-under-mnas", FAILED, RewardConfig(kind="mnas", target=1000), 10, 0.1),
    ("nan-acc-is-failure", ok(float("nan")), RewardConfig(), 10, 0.1),
    ("mnas-at-target", ok(0.8, params=1000), RewardConfig(kind="mnas", target=1000), 10, 0.8),
    ("mnas-double", ok(0.8, params=2000), RewardConfig(kind="mnas", target=1000), 10, 0.8 * 2**-0.07),
    ("mnas-half", ok(0.8, params=500), RewardConfig(kind="mnas", target=1000), 10, 0.8 * 0.5**-0.07),
    ("mnas-flops", ok(0.8, flops=40_000), RewardConfig(kind="mnas", cost="flops", target=10_000), 10, 0.8 * 4**-0.07),
    ("mnas-weight", ok(0.8, params=2000), RewardConfig(kind="mnas", target=1000, weight=-0.5), 10, 0.8 / math.sqrt(2)),
    ("mnas-zero-cost", ok(0.8, params=0), RewardConfig(kind="mnas", target=1), 10, 0.8),
    ("constraint-below", ok(0.8, params=500), RewardConfig(kind="constraint", target=1000), 10, 0.8),
    ("constraint-at", ok(0.8, params=1000), RewardConfig(kind="constraint", target=1000), 10, 0.8),
    ("constraint-double", ok(0.8, params=2000), RewardConfig(kind="constraint", target=1000), 10, 0.4),
    ("constraint-steeper", ok(0.8, params=2000), RewardConfig(kind="constraint", target=1000, weight=-2.0), 10, 0.2),
    ("constraint-gentler-ignored", ok(0.8, params=2000), RewardConfig(kind="constraint", target=1000, weight=-0.1), 10, 0.4),
]


@pytest.mark.parametrize("result, cfg, num_classes, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reward(result, cfg, num_classes, expected):
    value = reward(result, cfg, num_classes)
    assert type(value) is float
    assert value == pytest.approx(expected, rel=1e-12)


def test_reward_is_python_float_for_numpy_inputs():
    result = EvalResult(arch="conv3-16", val_acc=np.float32(0.5), params=np.int64(2000), flops=1)
    assert type(reward(result, RewardConfig(kind="mnas", target=1000), 10)) is float


@pytest.mark.parametrize(
    "cfg, expected",
    [
        (RewardConfig(), {"cost": 2000.0, "cost_factor": 1.0}),
        (RewardConfig(kind="mnas", target=1000), {"cost": 2000.0, "cost_factor": 2**-0.07, "cost_target": 1000.0}),
        (RewardConfig(kind="constraint", cost="flops", target=100_000),
         {"cost": 50_000.0, "cost_factor": 1.0, "cost_target": 100_000.0}),
    ],
    ids=["accuracy", "mnas", "constraint-flops"],
)
def test_cost_terms(cfg, expected):
    terms = cost_terms(ok(), cfg)
    assert terms == pytest.approx(expected)
    assert all(type(v) is float and math.isfinite(v) for v in terms.values())


def test_cost_terms_of_a_failure_are_finite():
    """The env puts them in ``info``, which check_env compares between runs: NaN would differ."""
    terms = cost_terms(EvalResult.failure("conv3-16", "exception: boom"), RewardConfig(kind="mnas", target=10))
    assert all(math.isfinite(v) for v in terms.values())


# -- latency as the cost -------------------------------------------------------------------------
def timed(acc: float = 0.8, latency_ms: float | None = 2.0) -> EvalResult:
    return EvalResult(arch="conv3-16", val_acc=acc, params=2000, flops=50_000, latency_ms=latency_ms)


LATENCY_CASES = [
    ("mnas-double", timed(0.8, 2.0), RewardConfig(kind="mnas", cost="latency", target=1.0), 0.8 * 2**-0.07),
    # below a millisecond counts as measured (params and FLOPs are floored at 1, latency is not)
    ("mnas-sub-ms-half", timed(0.8, 0.25), RewardConfig(kind="mnas", cost="latency", target=0.5), 0.8 * 0.5**-0.07),
    ("constraint-double", timed(0.8, 3.0), RewardConfig(kind="constraint", cost="latency", target=1.5), 0.4),
    ("constraint-below", timed(0.8, 1.0), RewardConfig(kind="constraint", cost="latency", target=1.5), 0.8),
    ("zero-is-floored", timed(0.8, 0.0), RewardConfig(kind="mnas", cost="latency", target=1e-3), 0.8),
]


@pytest.mark.parametrize("result, cfg, expected", [c[1:] for c in LATENCY_CASES], ids=[c[0] for c in LATENCY_CASES])
def test_latency_reward(result, cfg, expected):
    assert reward(result, cfg, 10) == pytest.approx(expected, rel=1e-12)
    assert cost_terms(result, cfg)["cost"] == result.latency_ms


def test_latency_cost_of_a_failure_is_finite_and_unmeasured_success_is_an_error():
    cfg = RewardConfig(kind="mnas", cost="latency", target=1.0)
    failed = EvalResult.failure("conv3-16", "nan_loss")
    assert reward(failed, cfg, 10) == 0.1
    assert all(math.isfinite(v) for v in cost_terms(failed, cfg).values())
    with pytest.raises(ValueError, match="only the 'train' evaluator measures it"):
        reward(timed(latency_ms=None), cfg, 10)


def test_latency_needs_the_training_evaluator():
    from nas_gym.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="'latency' is measured by the 'train' evaluator only"):
        load_config("mnist1d-tiny", {"reward.cost": "latency", "evaluator.kind": "table"})


def test_measured_latency_is_positive_and_finite():
    import torch

    from nas_gym.spaces.layer_chain.chain import Chain
    from nas_gym.spaces.layer_chain.model import build_model
    from nas_gym.training.train import measure_latency

    model = build_model(Chain.parse("conv3-16|maxpool"), (1, 40), 10)
    ms = measure_latency(model, (1, 40), torch.device("cpu"), warmup=1, repeats=3)
    assert type(ms) is float and math.isfinite(ms) and ms > 0.0
    assert not model.training


def test_training_evaluator_attaches_latency_once_and_keeps_it_out_of_the_cache():
    """Measured in the driver, memoised (same architecture -> same latency, so the env's info is
    repeatable), and never stored: the cache holds machine-independent results only."""
    from nas_gym.config import load_config
    from nas_gym.evaluators.training import TrainingEvaluator
    from nas_gym.execution.backends import BackendBase
    from nas_gym.spaces.layer_chain.chain import Chain
    from nas_gym.storage.cache import MemoryCache

    class Instant(BackendBase):
        def run(self, archs, on_result=None):
            return [EvalResult(arch=a.text(), val_acc=0.5, params=1, flops=1) for a in archs]

        def close(self) -> None:
            pass

    cfg = load_config("mnist1d-tiny", {"reward.kind": "mnas", "reward.cost": "latency", "reward.target": 1.0,
                                       "runtime.device": "cpu"})
    cache = MemoryCache()
    arch = Chain.parse("conv3-16|maxpool")
    with TrainingEvaluator(cfg, cache=cache, backend=Instant()) as evaluator:
        first, again = evaluator.evaluate(arch), evaluator.evaluate(arch)
    assert first.latency_ms is not None and first.latency_ms > 0 and again.latency_ms == first.latency_ms
    assert cache.get(arch, evaluator.context).latency_ms is None
    assert reward(first, cfg.reward, 10) == pytest.approx(0.5 * first.latency_ms**-0.07)
