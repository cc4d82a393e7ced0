"""nas-gym: neural architecture search as a Gymnasium environment.

``import nas_gym`` registers the environments (string entry points, so nothing heavy is imported
until an env is made) and exports the public names.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import Any

from gymnasium.envs.registration import register, registry

from nas_gym.config import Config, ConfigError, load_config
from nas_gym.evaluators.base import EvalResult, EvalStats, Evaluator
from nas_gym.spaces import Architecture, ArchitectureError, SearchSpace, SpaceParams
from nas_gym.spaces.layer_chain.chain import Chain, Op
from nas_gym.spaces.layer_chain.space import LayerChainSpace

__version__ = "0.1.0"

_HERE = Path(__file__).resolve().parent
_SOURCE_AGENTS = _HERE.parent / "agents"


class _SourceAgents(importlib.abc.MetaPathFinder):
    """``nas_gym.agents`` in a source checkout or an editable install.

    The agents live in the repository's top-level ``agents/`` folder; the wheel installs that folder
    as ``nas_gym/agents`` (pyproject.toml), so no top-level ``agents`` package shadows another
    distribution's (the OpenAI Agents SDK imports as ``agents``). Where ``nas_gym`` is imported from
    a checkout instead, this finder gives the folder the same name, so one import path works in both.
    """

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != f"{__name__}.agents":
            return None
        return importlib.util.spec_from_file_location(fullname, _SOURCE_AGENTS / "__init__.py",
                                                      submodule_search_locations=[str(_SOURCE_AGENTS)])


if not (_HERE / "agents").is_dir() and (_SOURCE_AGENTS / "__init__.py").is_file() \
        and not any(isinstance(f, _SourceAgents) for f in sys.meta_path):
    sys.meta_path.append(_SourceAgents())

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
