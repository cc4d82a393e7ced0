"""nas-gym: neural architecture search as a Gymnasium environment.

``import nas_gym`` registers the environments (string entry points, so nothing heavy is imported
until an env is made) and exports the public names.
"""

from typing import Any

from gymnasium.envs.registration import register, registry

from nas_gym.config import Config, ConfigError, load_config
from nas_gym.evaluators.base import EvalResult, EvalStats, Evaluator
from nas_gym.spaces import Architecture, ArchitectureError, SearchSpace, SpaceParams
from nas_gym.spaces.layer_chain.chain import Chain, Op
from nas_gym.spaces.layer_chain.space import LayerChainSpace

__version__ = "0.1.0"

# One env class over any space; each id only picks a default preset.
ENV_DEFAULT_PRESETS = {"NasGym/LayerChain-v0": "mnist1d", "NasGym/Cell-v0": "mnist1d-cell"}
ENV_IDS = tuple(ENV_DEFAULT_PRESETS)

for _env_id, _preset in ENV_DEFAULT_PRESETS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point="nas_gym.envs.nas_env:NasEnv", kwargs={"config": _preset})

__all__ = [
    "ENV_IDS",
    "Architecture",
    "ArchitectureError",
    "Chain",
    "Config",
    "ConfigError",
    "EvalResult",
    "EvalStats",
    "Evaluator",
    "LayerChainSpace",
    "Op",
    "SearchSpace",
    "SpaceParams",
    "load_config",
    "load_model",
]


def __getattr__(name: str) -> Any:
    if name == "load_model":  # lazy: it needs torch, and ``import nas_gym`` does not import torch
        from nas_gym.runs.retrain import load_model

        return load_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
