"""Search spaces: the registry and how a user's space is found.

A space is a class implementing ``nas_gym.spaces.base.SearchSpace`` with a ``Params`` model
(its ``space:`` section) and ``from_params``. Built-in spaces are registered below by import
path, so naming one imports nothing heavy; a user's space is named in the preset as
``kind: package.module:Class`` or ``kind: path/to/file.py:Class``, or by the name an installed
package declares in its ``nas_gym.spaces`` entry-point group.
"""

from __future__ import annotations

from typing import Any

from nas_gym import plugins
from nas_gym.errors import NasGymError
from nas_gym.spaces.base import Architecture, ArchitectureError, SearchSpace, SpaceDefinition, SpaceParams, play_actions

BUILTIN_SPACES: dict[str, str] = {
    "layer_chain": "nas_gym.spaces.layer_chain.space:LayerChainSpace",
    "cell": "nas_gym.spaces.cell.space:CellSpace",
}


class SpaceError(NasGymError, ValueError):
    """A space kind that cannot be resolved to a usable class."""


def space_kinds() -> list[str]:
    """Registered kinds and those installed packages declare as ``nas_gym.spaces`` entry points."""
    return plugins.names("space", BUILTIN_SPACES)


def resolve_space(kind: str) -> type:
    """The space class a preset's ``space.kind`` names: a registered kind, an installed package's
    ``nas_gym.spaces`` entry point, ``module.path:Class`` or ``file.py:Class`` (``nas_gym.plugins``).

    :raises SpaceError: one line naming the kind and what is accepted.
    """
    cls = plugins.load(kind, "space", BUILTIN_SPACES, SpaceError, label="space kind")
    if not (isinstance(cls, SpaceDefinition) and isinstance(cls.Params, type) and issubclass(cls.Params, SpaceParams)):
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
