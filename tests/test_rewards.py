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
