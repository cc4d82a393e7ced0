"""Turning an EvalResult into a reward.

Three kinds (``RewardConfig.kind``):

* ``accuracy``: validation accuracy, as MetaQNN and Zoph & Le used.
* ``mnas``: MnasNet's soft trade-off ``acc * (cost / target) ** w`` with ``w = weight``
  (default -0.07): every architecture is ranked, a cost twice the target costs about 5% of
  the reward, a cost half the target gains about 5%.
* ``constraint``: MnasNet's hard form, ``w = 0`` at or below the target (cost does not matter
  inside the budget) and ``w = -1`` above it (the reward falls in proportion to the overshoot),
  MnasNet's alpha = 0, beta = -1. A ``weight`` steeper than -1 is honoured, so a budget can be
  made stricter; a gentler one is not, since it would no longer be a hard constraint (use
  ``mnas`` for that).

A failed architecture gets ``failure_reward``, or chance level ``1 / num_classes`` when that is
None: MetaQNN's choice, which tells the agent "no better than guessing" without the outlier a
large negative reward would be for value estimates.
"""

from __future__ import annotations

import math

from nas_gym.config import RewardConfig
from nas_gym.evaluators.base import EvalResult

HARD_WEIGHT = -1.0  # MnasNet's beta for a hard constraint


def cost(result: EvalResult, cfg: RewardConfig) -> float:
    """The cost the reward penalises: trainable parameters or multiply-accumulates."""
    return float(result.params if cfg.cost == "params" else result.flops)


def cost_factor(result: EvalResult, cfg: RewardConfig) -> float:
    """The multiplier the cost applies to accuracy (1.0 for kind ``accuracy``).

    A cost below 1 is taken as 1 so that an empty measurement cannot divide by zero.
    """
    if cfg.kind == "accuracy" or cfg.target is None:
        return 1.0
    ratio = max(cost(result, cfg), 1.0) / cfg.target
    if cfg.kind == "mnas":
        return float(ratio**cfg.weight)
    if ratio <= 1.0:
        return 1.0
    return float(ratio ** min(cfg.weight, HARD_WEIGHT))


def failure_reward(cfg: RewardConfig, num_classes: int) -> float:
    return float(cfg.failure_reward) if cfg.failure_reward is not None else 1.0 / num_classes


def reward(result: EvalResult, cfg: RewardConfig, num_classes: int) -> float:
    """The reward of one evaluated architecture, always a python float.

    A result marked ok but with a non-finite accuracy is treated as a failure: a NaN reward
    would poison every value estimate an agent keeps.
    """
    if not result.ok or not math.isfinite(result.val_acc):
        return failure_reward(cfg, num_classes)
    return float(result.val_acc) * cost_factor(result, cfg)


def cost_terms(result: EvalResult, cfg: RewardConfig) -> dict[str, float]:
    """The reward's cost terms for the env's ``info``: deterministic, no NaN (``check_env``
    compares infos of two identical runs, and NaN never equals itself)."""
    terms = {"cost": cost(result, cfg), "cost_factor": cost_factor(result, cfg)}
    if cfg.target is not None:
        terms["cost_target"] = float(cfg.target)
    return terms
