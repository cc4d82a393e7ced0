"""Measuring the latency table (``nas-gym latency profile``): every layer, then a fitted line.

Each layer key the preset's space can produce (``nas_gym.latency.layers``) is timed on its own
at batch 1 with one torch thread: warm-up runs, then the median of ``repeats`` timed runs,
synchronising an accelerator before reading the clock. A few whole networks, sampled from a
seeded generator, are then timed the same way, and ``measured = scale * sum + intercept`` is
fitted to them by least squares: what a network costs beyond its layers' sum, which no single
layer shows.

The runs are interleaved: round after round, every module once per round. Timed one module
after the other, a burst of load from another process (on these 2-core machines, a sibling
thread sharing the core) slowed every run of the modules it overlapped, and two profiles of
one preset disagreed by up to 2x on single entries; spread over all modules, a burst moves
each median little. Each timed run follows an untimed run of the same module, so it finds its
weights and code in the caches, as a run of ``measure_latency`` (``reward.cost: latency``) does:
timed straight after other modules, the small networks here ran about 25% slower.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nas_gym.config import Config
from nas_gym.latency.layers import key_shape, layers_for
from nas_gym.latency.model import LatencyTable, cpu_name, device_label, preset_identity
from nas_gym.training.train import cpu_threads, forked_rng, resolve_device, seed_torch

THREADS = 1  # what the trainer uses by default; and two one-thread processes beat one two-thread one here


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_interleaved(models: Sequence[tuple[nn.Module, tuple[int, ...]]], device: torch.device, *, warmup: int,
                     repeats: int, on_round: Callable[[], None] | None = None) -> list[float]:
    """Median milliseconds of one batch-1 forward pass of each ``(model, input shape)`` on
    ``device``, in eval mode, one torch thread, timed in ``repeats`` interleaved rounds (each
    timed run straight after an untimed one of the same model) after ``warmup`` untimed runs
    of each. Models are moved to ``device``."""
    calls = []
    for model, shape in models:
        x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(0)).to(device)
        calls.append((model.to(device).eval(), x))
    times: list[list[float]] = [[] for _ in calls]
    with cpu_threads(device, THREADS), torch.inference_mode():
        for model, x in calls:
            for _ in range(warmup):
                model(x)
        for _ in range(repeats):
            for (model, x), samples in zip(calls, times, strict=True):
                model(x)
                _synchronize(device)
                start = time.perf_counter()
                model(x)
                _synchronize(device)
                samples.append(time.perf_counter() - start)
            if on_round is not None:
                on_round()
    return [1000.0 * statistics.median(t) for t in times]


def sample_distinct(space: Any, n: int, rng: np.random.Generator) -> list[Any]:
    """Up to ``n`` architectures of distinct keys (fewer in a space that has fewer)."""
    found: dict[str, Any] = {}
    for _ in range(50 * n):
        if len(found) == n:
            break
        arch = space.sample(rng)
        found.setdefault(arch.key(), arch)
    return list(found.values())


def fit_line(sums: list[float], measured: list[float]) -> tuple[float, float]:
    """``(intercept, scale)`` of the least-squares line ``measured = scale * sum + intercept``;
    the scale is 1 when the sums do not vary (one architecture: nothing to fit a slope on)."""
    x, y = np.asarray(sums, dtype=float), np.asarray(measured, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0:
        return float(np.mean(y - x)), 1.0
    scale, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(scale)


def profile(config: Config, *, repeats: int = 100, warmup: int = 10, fit_archs: int = 30, seed: int = 0,
            on_step: Callable[[int, int], None] | None = None) -> LatencyTable:
    """The latency table of ``config``'s space and data shape on ``config.runtime.device``.

    :param repeats: timed runs per layer and per whole network; the median is kept.
    :param warmup: untimed runs first (allocator, lazy initialisation, caches).
    :param fit_archs: whole networks the line is fitted on.
    :param seed: seeds their sample and the modules' initial weights.
    :param on_step: called as ``(done, total)`` after each round of timing (a progress bar).
    :raises ValueError: a space the model cannot decompose, or a bad count.
    """
    if repeats < 1 or warmup < 0 or fit_archs < 1:
        raise ValueError(f"need repeats >= 1, warmup >= 0 and fit_archs >= 1, got {repeats}, {warmup}, {fit_archs}")
    start = time.perf_counter()
    device = resolve_device(config.runtime.device)
    space, shape, classes = config.search_space(), config.input_shape, config.num_classes
    layers = layers_for(space, shape, classes)
    keys = layers.all_keys()
    archs = sample_distinct(space, fit_archs, np.random.default_rng(seed))
    total, done = repeats, 0

    def on_round() -> None:
        nonlocal done
        done += 1
        if on_step is not None:
            on_step(done, total)

    with forked_rng(torch.device("cpu")):  # the caller's global generators are left as they were
        seed_torch(seed, torch.device("cpu"))
        modules = [(layers.build(key), key_shape(key)) for key in keys]
        networks = [(space.build_model(a, shape, classes), shape) for a in archs]
    # Layers and whole networks in the same rounds: this machine's speed drifts by tens of
    # percent from one stretch of seconds to the next (measured: the same 30 networks, timed in
    # two calls a few seconds apart, differed by a median 1.47x), and a line fitted on networks
    # timed in another stretch than the layers would fit the drift, not the networks.
    times = time_interleaved(modules + networks, device, warmup=warmup, repeats=repeats, on_round=on_round)
    entries = dict(zip(keys, times[:len(modules)], strict=True))
    measured = times[len(modules):]
    sums = [sum(entries[k] for k in layers.keys(a)) for a in archs]
    intercept, scale = fit_line(sums, measured)
    residuals = [m - (scale * s + intercept) for s, m in zip(sums, measured, strict=True)]
    return LatencyTable(
        cpu=cpu_name(), device=device_label(device), torch=torch.__version__, threads=THREADS,
        preset={**preset_identity(config.space, shape, classes), "name": config.name}, repeats=repeats,
        warmup=warmup, entries=entries, intercept_ms=intercept, scale=scale,
        fit={"archs": [a.text() for a in archs], "seed": seed, "measured_ms": measured, "residual_ms": residuals},
        profile_seconds=time.perf_counter() - start,
    )
