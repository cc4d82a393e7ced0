"""What a space may offer beyond ``SearchSpace``, declared as protocols instead of probed by name.

Each capability is a runtime-checkable protocol: code that needs one writes
``isinstance(space, CountsParams)`` and names the missing capability in its error, and a user's
space gets a feature (the surrogate, weight sharing, the latency model) by defining the method,
with no registration and no change to nas-gym. ``isinstance`` on these protocols checks that the
methods exist, not their signatures: the signatures below are the contract.

The latency capability also fixes the layer key format (``<layer>@<input shape>``, e.g.
``conv3-32s2@16x40``): the unit the latency table stores one measured time for, so a space's
layers and the table agree on names without either importing the other.

No torch at import time: predicting a latency reads keys only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import nn

    from nas_gym.spaces.supernet.base import Supernet

Shape = tuple[int, ...]


def layer_key(layer: str, shape: Shape) -> str:
    """The table key of ``layer`` run on one sample of ``shape``."""
    return f"{layer}@{'x'.join(map(str, shape))}"


def key_shape(key: str) -> Shape:
    """The input shape a key names (``conv3-16@8x40`` -> ``(8, 40)``)."""
    return tuple(int(n) for n in key.rpartition("@")[2].split("x"))


@runtime_checkable
class CountsParams(Protocol):
    """A space that counts a network's trainable parameters from the architecture alone (the
    surrogate evaluator reports them without building the model)."""

    def count_params(self, arch: Any, input_shape: Shape, num_classes: int) -> int: ...


@runtime_checkable
class BuildsSupernet(Protocol):
    """A space whose architectures share one set of weights (the supernet evaluator, ENAS,
    DARTS); see ``nas_gym.spaces.supernet.base.Supernet`` for what the module must answer."""

    def build_supernet(self, input_shape: Shape, num_classes: int) -> Supernet: ...


@runtime_checkable
class LatencyLayers(Protocol):
    """A space's networks cut into the layers the latency table times.

    * ``keys(arch)``: the layers of ``arch``'s network, in order (the prediction sums their times);
    * ``all_keys()``: every key any architecture of the space can produce (what the profile
      measures), best found by walking the space's rules rather than enumerating architectures;
    * ``build(key)``: the module to time for a key, best cut from a model the space itself
      builds, so the table measures exactly the modules the network runs.
    """

    def keys(self, arch: Any) -> list[str]: ...

    def all_keys(self) -> list[str]: ...

    def build(self, key: str) -> nn.Module: ...


@runtime_checkable
class ProvidesLatencyLayers(Protocol):
    """A space the latency model can predict for (``reward.cost: latency_model``)."""

    def latency_layers(self, input_shape: Shape, num_classes: int) -> LatencyLayers: ...


__all__ = ["BuildsSupernet", "CountsParams", "LatencyLayers", "ProvidesLatencyLayers", "Shape", "key_shape",
           "layer_key"]
