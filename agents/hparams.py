"""Hyperparameter files of the SB3 agents: ``envs_config/agents/<algo>.yaml``.

rl-baselines3-zoo's shape: top-level keys are preset names plus ``default``, each mapping to
constructor keywords of the algorithm. The files sit beside the env presets, so the wheel's
force-include of ``envs_config`` (as ``nas_gym/presets``) ships them, and the same two-folder
lookup as :data:`nas_gym.config.PRESET_DIRS` finds them installed or in a checkout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
import yaml
from stable_baselines3.common.vec_env import VecEnv

from nas_gym.agents.context import AgentContext
from nas_gym.agents.errors import AgentError
from nas_gym.config import PRESET_DIRS

# Beside the env presets, so the files ship in the wheel by the same force-include.
HPARAM_DIRS = tuple(d / "agents" for d in PRESET_DIRS)
# YAML cannot hold a class and nothing here evals strings: activations are named.
ACTIVATIONS: dict[str, type[torch.nn.Module]] = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU,
                                                 "leaky_relu": torch.nn.LeakyReLU, "gelu": torch.nn.GELU}


def hparams_file(name: str) -> Path | None:
    """``agents/<name>.yaml`` in the first preset folder that has it (installed wheel first)."""
    return next((d / f"{name}.yaml" for d in HPARAM_DIRS if (d / f"{name}.yaml").is_file()), None)


def preset_hparams(name: str, preset: str | None) -> tuple[dict[str, Any], str]:
    """The entry of ``preset`` in ``agents/<name>.yaml``, else its ``default`` entry, and a label
    saying which (``path:entry``) for error messages.

    :raises AgentError: the file is missing, not YAML, or not a mapping of mappings.
    """
    path = hparams_file(name)
    if path is None:
        raise AgentError(f"no hyperparameter file agents/{name}.yaml in {', '.join(map(str, HPARAM_DIRS))}; "
                         "reinstall nas-gym or restore envs_config/agents/")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise AgentError(f"{path}: is not valid YAML ({getattr(e, 'problem', e)}); fix the syntax") from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise AgentError(f"{path}: expected preset names (and `default`) mapping to keyword arguments")
    key = preset if preset in raw else "default"
    if key not in raw:
        raise AgentError(f"{path}: no entry for preset {preset!r} and no `default` entry")
    return dict(raw[key]), f"{path}:{key}"


def preset_name(env: gym.Env | VecEnv) -> str | None:
    """The name of the preset behind ``env`` (its config's ``name``), or None if it has none."""
    if isinstance(env, VecEnv):
        try:
            config = env.get_attr("config", indices=0)[0]
        except Exception:  # no config, or one that cannot cross a process boundary
            return None
    else:
        context = AgentContext.find(env)
        config = None if context is None else context.config
    name = getattr(config, "name", None)
    return name if isinstance(name, str) else None


def named_activation(kwargs: dict[str, Any], where: str) -> dict[str, Any]:
    """``policy_kwargs.activation_fn`` given by name (YAML, ``--hparams``) -> the torch class."""
    policy_kwargs = kwargs.get("policy_kwargs")
    if not isinstance(policy_kwargs, dict) or not isinstance(policy_kwargs.get("activation_fn"), str):
        return kwargs
    name = policy_kwargs["activation_fn"]
    if name not in ACTIVATIONS:
        raise AgentError(f"{where}: unknown policy_kwargs.activation_fn {name!r}; known: {', '.join(ACTIVATIONS)}")
    return {**kwargs, "policy_kwargs": {**policy_kwargs, "activation_fn": ACTIVATIONS[name]}}
