"""What the one-shot agents (ENAS, DARTS) share: their data and supernet, and how their own
compute is charged.

They train weights themselves instead of asking the env's evaluator, so the seconds they spend
are added to that evaluator's ``stats.train_seconds``: ``compare`` then weighs them by the
compute they used, like agents whose every architecture is trained (see ``nas_gym.evaluators``).
The architectures they return still go through the env, and are charged there as usual.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from nas_gym.config import Config
from nas_gym.data import Dataset, load_dataset
from nas_gym.spaces.base import SearchSpace
from nas_gym.spaces.capabilities import BuildsSupernet
from nas_gym.spaces.supernet.base import Supernet
from nas_gym.training.numerics import numerics_settings
from nas_gym.training.train import cpu_threads, forked_rng, resolve_device, seed_torch


@dataclass
class OneShotSetup:
    """The preset, its data on the device, the space and a fresh supernet of it."""

    config: Config
    device: torch.device
    data: Dataset
    space: SearchSpace
    net: Supernet


def one_shot_setup(config: Config, space: SearchSpace, seed: int) -> OneShotSetup:
    """Load the preset's data and build ``space``'s supernet, weights drawn from ``seed`` in a
    forked RNG (the caller's torch streams are untouched)."""
    device = resolve_device(config.runtime.device)
    data = load_dataset(config.data).to(device)
    if not isinstance(space, BuildsSupernet):
        raise ValueError(f"space {config.space.kind!r} has no build_supernet; one-shot agents need one")
    with forked_rng(device):
        seed_torch(seed, device)
        net = space.build_supernet(data.input_shape, data.num_classes).to(device)
    return OneShotSetup(config, device, data, space, net)


@contextlib.contextmanager
def charged(charge_seconds: Callable[[float], None], setup: OneShotSetup, seed: int) -> Iterator[None]:
    """Run a block of the agent's own training: on the preset's CPU threads, with torch's
    global RNG (dropout) forked and seeded by ``seed``, the runtime's CUDA flags (TF32,
    determinism: ``nas_gym.training.numerics``), its seconds passed to ``charge_seconds`` (the agent's
    context charges them to the env's evaluator).

    The charge is CPU-seconds of this process (``time.process_time``), the kind of seconds the
    tables record for each training (a worker's CPU time on one torch thread): wall-clock time
    would charge a one-shot agent for whatever else the machine was running meanwhile."""
    start = time.process_time()
    try:
        with cpu_threads(setup.device, setup.config.runtime.threads), forked_rng(setup.device), \
                numerics_settings(setup.device, setup.config.runtime):
            seed_torch(seed, setup.device)
            yield
    finally:
        charge_seconds(time.process_time() - start)


def summary_writer(logdir: Any, name: str, purge_step: int | None) -> Any:
    """A TensorBoard writer in ``logdir/name`` (its own run beside the search's curves), or
    None without a logdir. ``purge_step`` hides what a stopped run wrote after its checkpoint."""
    if logdir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(logdir / name), purge_step=purge_step)
