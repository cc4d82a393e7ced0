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

The cost (``RewardConfig.cost``) is the trainable parameter count, the multiply-accumulates of
one forward pass, or ``latency``: the measured milliseconds of a batch-1 forward pass on the
evaluation device (``nas_gym.training.train.measure_latency``), which counts what FLOPs miss (memory
traffic, per-layer overhead). Latency is a property of the machine, not of the architecture
alone, so it is handled apart from the deterministic costs:

* the training evaluator measures it once per architecture and keeps it for its own lifetime,
  so within one env or one run the same architecture always gets the same latency, reward and
  ``info`` (``check_env``'s determinism check passes);
* it is not stored in the result cache, and two runs (two processes, two machines, one
  machine under different load) measure different numbers: a latency reward, and the
  ``info["cost"]`` where the env reports it, are *not* covered by the guarantee that the same
  seed gives the same rewards and infos across runs. Runs compared on a latency reward
  should run on the same machine, one at a time.

``latency_model`` is that latency predicted instead of measured: the sum of this machine's
per-layer times over the architecture's layers plus a fitted constant (``nas_gym.latency.model``,
built by ``nas-gym latency profile``). A lookup, so every evaluator (table, surrogate, proxy)
can use it, and deterministic, so it is covered by the same-seed guarantee; the config refuses a
table measured on another machine, torch or preset.

A failed architecture gets ``failure_reward``, or chance level ``1 / num_classes`` when that is
None: MetaQNN's choice, which tells the agent "no better than guessing" without the outlier a
large negative reward would be for value estimates.
"""

from __future__ import annotations

import math

from nas_gym.config import RewardConfig
from nas_gym.results import EvalResult

HARD_WEIGHT = -1.0  # MnasNet's beta for a hard constraint
# The smallest cost taken at face value, so an empty measurement cannot divide by zero: one
# parameter or MAC, one microsecond (a small network's batch-1 forward takes a fraction of a
# millisecond on a CPU, so a floor of 1 ms would make them all equal).
_COST_FLOOR = {"params": 1.0, "flops": 1.0, "latency": 1e-3, "latency_model": 1e-3}


def cost(result: EvalResult, cfg: RewardConfig) -> float:
    """The cost the reward penalises: trainable parameters, multiply-accumulates or latency (ms),
    measured or predicted.

    A failed result has no measured latency and costs 0.0 (its reward is the failure reward anyway); a
    predicted latency needs no training, so a failed architecture gets one too.
    :raises ValueError: a successful result without a latency under a latency cost, i.e. it
        came from an evaluator that does not measure latency.
    """
    if cfg.cost == "latency_model":
        from nas_gym.latency.model import predict_ms

        return predict_ms(cfg.latency_table, result.arch)
    if cfg.cost == "latency":
        if result.latency_ms is not None:
            return float(result.latency_ms)
        if result.ok:
            raise ValueError(f"reward.cost 'latency' but the result of {result.arch!r} has no latency_ms; "
                             "only the 'train' evaluator measures it")
        return 0.0
    return float(result.params if cfg.cost == "params" else result.flops)


def cost_factor(result: EvalResult, cfg: RewardConfig) -> float:
    """The multiplier the cost applies to accuracy (1.0 for kind ``accuracy``).

    A cost below the floor (1 parameter or MAC, 1 microsecond) is taken as the floor.
    """
    if cfg.kind == "accuracy" or cfg.target is None:
        return 1.0
    ratio = max(cost(result, cfg), _COST_FLOOR[cfg.cost]) / cfg.target
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
