"""nas-gym: neural architecture search as a Gymnasium environment.

``import nas_gym`` registers the environments (string entry points, so nothing heavy is imported
until an env is made) and exports the public names.
"""

from typing import Any

from gymnasium.envs.registration import register, registry

from nas_gym.config import Config, ConfigError, load_config
from nas_gym.evaluators.base import EvalResult, EvalStats, Evaluator
from nas_gym.space import Architecture, ArchitectureError, Op, SearchSpace

__version__ = "0.1.0"

ENV_IDS = ("NasGym/LayerChain-v0",)

if "NasGym/LayerChain-v0" not in registry:
    register(id="NasGym/LayerChain-v0", entry_point="nas_gym.envs.layer_chain:LayerChainEnv")

__all__ = [
    "ENV_IDS",
    "Architecture",
    "ArchitectureError",
    "Config",
    "ConfigError",
    "EvalResult",
    "EvalStats",
    "Evaluator",
    "Op",
    "SearchSpace",
    "load_config",
    "load_model",
]


def __getattr__(name: str) -> Any:
    if name == "load_model":  # lazy: it needs torch, and ``import nas_gym`` does not import torch
        from nas_gym.retrain import load_model

        return load_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
