"""The ``space:`` section of a layer-chain preset, validated before any space is built: a config
is checked (and its errors name the field) without constructing the space it describes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from nas_gym.spaces.base import ArchitectureError, SpaceParams
from nas_gym.spaces.layer_chain.chain import Op


class LayerChainParams(SpaceParams):
    """``space:`` of a layer-chain preset: the op vocabulary (text forms, see
    ``nas_gym.spaces.layer_chain.chain``) and the depth limits."""

    kind: Literal["layer_chain"] = "layer_chain"
    ops: tuple[str, ...] = Field(min_length=1)
    max_depth: int = Field(ge=1, le=64)
    min_depth: int = Field(default=1, ge=1)

    @field_validator("ops")
    @classmethod
    def _ops_parse(cls, ops: tuple[str, ...]) -> tuple[str, ...]:
        try:
            texts = tuple(Op.parse(t).text() for t in ops)
        except ArchitectureError as e:
            raise ValueError(str(e)) from None
        # Compared in canonical form (conv3-16s1 is conv3-16): the space refuses repeats, and
        # failing here names the field instead of failing later, when the env is made.
        repeated = sorted({t for t in texts if texts.count(t) > 1})
        if repeated:
            raise ValueError(f"op {repeated[0]} is listed twice; list each op once")
        return texts

    @model_validator(mode="after")
    def _depths(self) -> LayerChainParams:
        if self.min_depth > self.max_depth:
            raise ValueError(f"min_depth {self.min_depth} is above max_depth {self.max_depth}")
        return self
