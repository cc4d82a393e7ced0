"""What a network is made of, for the latency model: its layers, each named with its input shape.

A layer key is ``<layer>@<input shape>``, e.g. ``conv3-32s2@16x40``: the unit the latency table
stores one measured time for. The decomposition is the space's own: any space that implements
``nas_gym.spaces.capabilities.ProvidesLatencyLayers`` (the layer chain and the cell do, and so can
a user's space) gets the latency model, with no switch on the space's type here.

No torch at import time: predicting a latency reads keys only (``nas_gym.rewards``); ``build``
imports torch when the profile needs modules.
"""

from __future__ import annotations

from typing import Any

from nas_gym.spaces.capabilities import LatencyLayers, ProvidesLatencyLayers, Shape, key_shape, layer_key

Layers = LatencyLayers  # the name the latency model and profile use

__all__ = ["Layers", "Shape", "key_shape", "layer_key", "layers_for"]


def layers_for(space: Any, input_shape: Shape, num_classes: int) -> Layers:
    """The decomposition of ``space``'s networks.

    :raises ValueError: a space the latency model cannot decompose (one line, naming the fix).
    """
    if not isinstance(space, ProvidesLatencyLayers):
        raise ValueError(f"reward.cost 'latency_model' needs a space with latency_layers(input_shape, num_classes), "
                         f"which {space.kind!r} lacks; "
                         "use reward.cost 'latency' (measured) or 'flops'")
    return space.latency_layers(tuple(input_shape), num_classes)
