"""Evaluate several architectures, each with its seeds, in one training pass.

A tabular benchmark trains every cell of a space once per seed. ``nas_gym.training.train.evaluate_seeds``
already stacks one architecture's seeds; here the (architecture, seed) members of several cells
are stacked too (``nas_gym.training.grouped_cell``), so the skeleton they share runs once, K times as
wide, instead of once per cell. Each member still gets what ``evaluate_architecture`` gives it
alone with ``train.seed`` = its seed, up to float rounding, and optionally its learning curve
(one point per epoch, as NAS-Bench-201 records a curve per cell and seed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nas_gym.config import RuntimeConfig, TrainConfig
from nas_gym.data import Dataset
from nas_gym.results import EvalResult
from nas_gym.spaces.base import Architecture, SearchSpace
from nas_gym.training import train as training
from nas_gym.training.fit import EpochMetrics

__all__ = ["MemberResult", "evaluate_members"]


@dataclass(frozen=True)
class MemberResult:
    """One (architecture, seed) member's result and its learning curve (empty unless asked for)."""

    result: EvalResult
    curve: tuple[EpochMetrics, ...] = ()


@dataclass
class _Built:
    """An architecture's networks (one per seed) and counts, or the results that refuse it."""

    text: str
    models: list[nn.Module]
    params: int = 0
    flops: int = 0
    refused: list[MemberResult] | None = None


def _build(arch: Architecture, seeds: Sequence[int], data: Dataset, config: TrainConfig, space: SearchSpace,
           device: torch.device) -> _Built:
    """Build as ``evaluate_seeds`` builds: each seed's weights drawn in a forked RNG, so a member
    starts from the same weights whatever else shares its pass."""
    text, fidelity = arch.text(), float(config.epochs)
    try:
        models = []
        for seed in seeds:
            with training.forked_rng(device):
                torch.manual_seed(seed)
                models.append(space.build_model(arch, data.input_shape, data.num_classes))
        params = training.count_params(models[0])
        flops = space.count_flops(arch, data.input_shape, data.num_classes)
    except Exception as e:  # a builder error is a property of the architecture, not a crash
        reason = "out_of_memory" if training._is_oom(e) else training.exception_reason(e)
        return _Built(text, [], refused=[MemberResult(EvalResult.failure(text, reason, fidelity=fidelity))] * len(seeds))
    if params > config.max_params:
        failure = EvalResult.failure(text, f"too_many_params: {params} > {config.max_params}", params, flops,
                                     fidelity=fidelity)
        return _Built(text, [], params, flops, [MemberResult(failure)] * len(seeds))
    return _Built(text, models, params, flops)


def evaluate_members(items: Sequence[tuple[Architecture, Sequence[int]]], data: Dataset, config: TrainConfig,
                     runtime: RuntimeConfig, *, space: SearchSpace, want_test: bool = False,
                     epoch_metrics: bool = True, clock: Callable[[], float] = time.perf_counter
                     ) -> list[list[MemberResult]]:
    """Every (architecture, seed) of ``items`` trained in one pass and scored.

    Result ``[i][j]`` is what ``evaluate_architecture(items[i][0])`` gives with ``train.seed =
    items[i][1][j]``, up to float rounding; ``train_seconds`` (and each curve point's seconds) is
    the member's equal share of the pass on ``clock``. An architecture that fails to build, or is
    over ``config.max_params``, is refused alone; if the pass itself raises, each architecture is
    trained in a pass of its own, so one bad architecture cannot fail the others.

    :param items: architectures of ``space`` with their seeds; networks must share the skeleton
        (the cell space's do), or the members train one by one (``train_members``).
    :param epoch_metrics: record every member's learning curve.
    :param clock: ``time.process_time`` counts CPU seconds (a table's clock), the default wall.
    """
    # Alike architectures side by side: members that share an op on an edge then sit in a range,
    # which the grouped cell reads as a view instead of a gather (``nas_gym.training.grouped_cell``).
    order = sorted(range(len(items)), key=lambda i: items[i][0].text())
    if order != list(range(len(items))):
        ordered = evaluate_members([items[i] for i in order], data, config, runtime, space=space,
                                   want_test=want_test, epoch_metrics=epoch_metrics, clock=clock)
        out: list[list[MemberResult]] = [[] for _ in items]
        for i, row in zip(order, ordered, strict=True):
            out[i] = row
        return out
    device = training.resolve_device(runtime.device)
    built = [_build(arch, seeds, data, config, space, device) for arch, seeds in items]
    models = [m for b in built for m in b.models]
    seeds = [s for b, (_, group) in zip(built, items, strict=True) if b.refused is None for s in group]
    trained: list = []
    if models:
        if not training._same_device(data.device, device):
            data = data.to(device)
        try:
            trained = training.train_members(models, data, config, runtime, seeds, want_test=want_test,
                                    epoch_metrics=epoch_metrics, clock=clock)
        except Exception as e:  # one bad member must not end a search, nor fail its pass-mates
            if len([b for b in built if b.refused is None]) > 1:
                return [evaluate_members([item], data, config, runtime, space=space, want_test=want_test,
                                         epoch_metrics=epoch_metrics, clock=clock)[0] for item in items]
            reason = "out_of_memory" if training._is_oom(e) else training.exception_reason(e)
            b = next(b for b in built if b.refused is None)
            failure = EvalResult.failure(b.text, reason, b.params, b.flops, fidelity=float(config.epochs))
            b.refused = [MemberResult(failure)] * len(b.models)
        finally:
            del models
    out, position = [], 0  # type: ignore[no-redef]
    for b in built:
        if b.refused is not None:
            out.append(b.refused)
            continue
        group, position = trained[position : position + len(b.models)], position + len(b.models)
        out.append([MemberResult(EvalResult(arch=b.text, val_acc=m.val_acc, params=b.params, flops=b.flops,
                                            train_seconds=m.seconds, train_loss=m.train_loss, test_acc=m.test_acc,
                                            status=m.status, reason=m.reason, fidelity=float(config.epochs)), m.curve)
                    for m in group])
        b.models.clear()
    return out
