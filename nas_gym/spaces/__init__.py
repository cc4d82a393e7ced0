"""Search spaces: the registry and how a user's space is found.

A space is a class implementing ``nas_gym.spaces.base.SearchSpace`` with a ``Params`` model
(its ``space:`` section) and ``from_params``. Built-in spaces are registered below by import
path, so naming one imports nothing heavy; a user's space is named in the preset as
``kind: package.module:Class`` or ``kind: path/to/file.py:Class``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from nas_gym.errors import NasGymError
from nas_gym.spaces.base import Architecture, ArchitectureError, SearchSpace, SpaceParams, play_actions

BUILTIN_SPACES: dict[str, str] = {
    "layer_chain": "nas_gym.spaces.layer_chain.space:LayerChainSpace",
    "cell": "nas_gym.spaces.cell.space:CellSpace",
}


class SpaceError(NasGymError, ValueError):
    """A space kind that cannot be resolved to a usable class."""


def space_kinds() -> list[str]:
    return sorted(BUILTIN_SPACES)


def _load_file(path: Path, attr: str) -> Any:
    if not path.is_file():
        raise SpaceError(f"space file {path} does not exist; give a registered kind ({', '.join(space_kinds())}), "
                         "module.path:Class or an existing file.py:Class")
    name = f"nas_gym_user_space_{path.stem}"
    module = sys.modules.get(name)
    if module is None or getattr(module, "__file__", None) != str(path.resolve()):
        spec = importlib.util.spec_from_file_location(name, path.resolve())
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # pydantic resolves the Params model's annotations through it
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return getattr(module, attr, None)


def resolve_space(kind: str) -> type:
    """The space class a preset's ``space.kind`` names.

    :raises SpaceError: one line naming the kind and what is accepted.
    """
    spec = BUILTIN_SPACES.get(kind, kind)
    module_name, sep, attr = spec.partition(":")
    if not sep or not attr:
        raise SpaceError(f"unknown space kind {kind!r}; choose one of {', '.join(space_kinds())} "
                         "or give module.path:Class or file.py:Class")
    if module_name.endswith(".py"):
        cls = _load_file(Path(module_name), attr)
    else:
        try:
            cls = getattr(importlib.import_module(module_name), attr, None)
        except ImportError as e:
            raise SpaceError(f"cannot import space {kind!r}: {e}; expected module.path:Class") from None
    if cls is None:
        raise SpaceError(f"space {kind!r}: {module_name} has no {attr!r}")
    params = getattr(cls, "Params", None)
    if not (isinstance(params, type) and issubclass(params, SpaceParams)) or not hasattr(cls, "from_params"):
        raise SpaceError(f"space {kind!r} needs a Params model (a SpaceParams subclass) and a from_params classmethod")
    return cls


def space_from_params(params: SpaceParams | dict[str, Any], input_shape: tuple[int, ...]) -> SearchSpace:
    """The space a ``space:`` section (a mapping or its validated model) describes, for data of
    one sample's ``input_shape``: how saved models and tables rebuild their space."""
    if not isinstance(params, SpaceParams):
        params = dict(params)
        params = resolve_space(str(params.get("kind", "layer_chain"))).Params.model_validate(params)
    return resolve_space(params.kind).from_params(params, tuple(input_shape))


__all__ = [
    "BUILTIN_SPACES",
    "Architecture",
    "ArchitectureError",
    "SearchSpace",
    "SpaceError",
    "SpaceParams",
    "play_actions",
    "resolve_space",
    "space_from_params",
    "space_kinds",
]
