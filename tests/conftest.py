"""Shared fixtures: envs on the tiny preset with the instant synthetic evaluator."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import pytest

import nas_gym  # noqa: F401  (registers the envs)
from nas_gym.config import load_config
from nas_gym.evaluators.synthetic import SyntheticEvaluator

# Run folders are signed with a per-user key (nas_gym.storage.trust): the tests and the commands they
# start use a key of their own, never the user's. Set before any test runs, so subprocesses inherit it.
os.environ.setdefault("NAS_GYM_KEY", os.path.join(tempfile.mkdtemp(prefix="nas-gym-key-"), "signing.key"))


def make_synthetic_env(preset: str = "mnist1d-tiny", evaluator_seed: int = 0, **kwargs: Any) -> gym.Env:
    """``NasGym/LayerChain-v0`` scored by a :class:`SyntheticEvaluator` (``evaluator_seed`` picks the problem)."""
    cfg = load_config(preset)
    evaluator = SyntheticEvaluator(cfg.search_space(), seed=evaluator_seed, num_classes=cfg.num_classes)
    return gym.make("NasGym/LayerChain-v0", config=cfg, evaluator=evaluator, **kwargs)


@pytest.fixture(scope="session")
def make_env() -> Callable[..., gym.Env]:
    """A factory, so one test can build several identical envs."""
    return make_synthetic_env


@pytest.fixture
def synthetic_env() -> gym.Env:
    return make_synthetic_env()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.gpu`` tests run wherever torch sees a CUDA GPU, and are skipped with the
    reason elsewhere (``-ra``, in pyproject, lists it in the summary)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU: torch.cuda.is_available() is False on this host")
        for item in gpu_items:
            item.add_marker(skip)
