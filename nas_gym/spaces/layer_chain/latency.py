"""The layer chain's network cut into the layers the latency table times
(``nas_gym.spaces.capabilities.LatencyLayers``): what ``LayerChainSpace.latency_layers`` returns.

No torch at import time: ``keys`` reads the chain only; ``build`` has the space build a model.
The space is typed ``Any``: this module is imported by ``nas_gym.spaces.layer_chain.space``, never the
other way round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas_gym.spaces.capabilities import Shape, key_shape, layer_key
from nas_gym.spaces.layer_chain.chain import CONV, EMPTY, RES, Chain, Op

if TYPE_CHECKING:
    from torch import nn


class ChainLayers:
    """A layer chain's network: one layer per op, then the head (global pooling + linear), whose
    cost depends on the last channel count and spatial size."""

    def __init__(self, space: Any, input_shape: Shape, num_classes: int) -> None:
        self.space, self.input_shape, self.num_classes = space, tuple(input_shape), num_classes
        self._ops: dict[str, Op] = {op.text(): op for op in space.ops}

    def _shape_after(self, shape: Shape, op: Op) -> Shape:
        channels = op.channels if op.kind in (CONV, RES) else shape[0]
        return (channels, *(op.out_size(s) for s in shape[1:]))

    def _shape_of(self, ops: tuple[Op, ...]) -> Shape:
        shape = self.input_shape
        for op in ops:
            shape = self._shape_after(shape, op)
        return shape

    def keys(self, arch: Chain) -> list[str]:
        shape, out = self.input_shape, []
        for op in arch.ops:
            out.append(layer_key(op.text(), shape))
            shape = self._shape_after(shape, op)
        out.append(layer_key("head", shape))
        return out

    def all_keys(self) -> list[str]:
        """Depth-first over prefixes, merging those with equal rule state (the space's
        ``transition_key``) and equal output shape: both decide every layer that can follow."""
        space, found, seen = self.space, set(), set()
        stack = [space.empty()]
        while stack:
            prefix = stack.pop()
            shape = self._shape_of(prefix.ops)
            state = (space.transition_key(prefix), shape)
            if state in seen:
                continue
            seen.add(state)
            mask = space.mask(prefix)
            if mask[space.stop_action]:
                found.add(layer_key("head", shape))
            for action, op in enumerate(space.ops):
                if mask[action]:
                    found.add(layer_key(op.text(), shape))
                    stack.append(space.step(prefix, action)[0])
        return sorted(found)

    def build(self, key: str) -> nn.Module:
        """The op's module from a one-op network the space builds (its first layer), or the
        head: the whole network of the empty chain."""
        layer, shape = key.rpartition("@")[0], key_shape(key)
        if layer == "head":
            return self.space.build_model(EMPTY, shape, self.num_classes)
        return self.space.build_model(Chain((self._ops[layer],)), shape, self.num_classes)[0]
