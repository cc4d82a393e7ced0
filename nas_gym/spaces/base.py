"""The SearchSpace protocol: everything the env, the agents and the evaluators ask of a space.

A space owns the rules of its episodes (what an action does to a partial architecture, which
actions are allowed, when the architecture is complete), their encoding for agents (a fixed-size
observation), the architectures' text form and canonical key, sampling and mutation, and the
model builder. Nothing outside the space's own module knows its rules, so a new space is one
module plus a registration in ``nas_gym.spaces``.

No torch at import time: agents, the cache and the tables reason about architectures without
paying for torch; ``build_model`` imports it when a model is actually built.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from nas_gym.errors import NasGymError

if TYPE_CHECKING:
    from torch import nn

    from nas_gym.spaces.supernet.base import Supernet


class ArchitectureError(NasGymError, ValueError):
    """An architecture text that does not parse, or an architecture the search space forbids."""


@runtime_checkable
class Architecture(Protocol):
    """An immutable, hashable value: a complete or partial architecture of one space.

    ``text()`` is its readable, parseable form; ``key()`` is a short digest that every network
    equal to it shares (isomorphic cells, for instance), the same in every process: the cache
    and the tables store one result per key.
    """

    def text(self) -> str: ...

    def key(self) -> str: ...


class SpaceParams(BaseModel):
    """The ``space:`` section of a preset. Each space subclasses it with its own fields; ``kind``
    names the space (a registered name, ``module:Class`` or ``path/file.py:Class``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: str


@runtime_checkable
class SearchSpace(Protocol):
    """What a space answers. ``Partial`` below is the space's own value for an architecture
    under construction (the layer chain uses its prefix; a cell its ops so far).

    :ivar kind: the registered name of the space (``layer_chain``, ``cell``, ...).
    :ivar n_actions: size of the ``Discrete`` action space.
    :ivar observation_size: length of the float32 observation vector.
    :ivar max_steps: the most steps an episode can take (SB3 bounds its rollouts with it).
    """

    kind: str
    n_actions: int
    observation_size: int
    max_steps: int

    # -- episodes ----------------------------------------------------------------------------
    def empty(self) -> Any:
        """The partial architecture an episode starts from."""

    def step(self, partial: Any, action: int) -> tuple[Any, bool]:
        """The partial architecture after ``action`` (which the mask allows) and whether it is
        now complete (the env then evaluates it)."""

    def mask(self, partial: Any) -> np.ndarray:
        """Boolean array over actions, True = allowed after ``partial``."""

    def observe(self, partial: Any) -> np.ndarray:
        """A float32 vector of ``observation_size`` in [0, 1]; equal partials, equal vectors."""

    def actions_of(self, arch: Any) -> list[int]:
        """The actions that build ``arch`` from ``empty()``, the completing one included."""

    def transition_key(self, partial: Any) -> Hashable:
        """A summary of ``partial`` that decides every continuation: two partials with equal
        keys allow the same actions now and after any sequence of actions, and are complete
        after the same ones. Lets exact dynamic programs (the synthetic evaluator's optimum)
        run over summaries instead of every prefix."""

    # -- architectures -----------------------------------------------------------------------
    def parse(self, text: str) -> Any:
        """The architecture a text form names (not yet checked against the space's rules)."""

    def violation(self, arch: Any) -> str | None:
        """Why ``arch`` is not a complete architecture of this space, or None."""

    def validate(self, arch: Any) -> Any:
        """``arch`` (parsed first if text), checked; raises ArchitectureError naming the rule."""

    def sample(self, rng: np.random.Generator) -> Any:
        """A complete architecture drawn uniformly (over architectures, not over actions)."""

    def mutate(self, arch: Any, rng: np.random.Generator) -> Any:
        """A valid architecture one edit away from ``arch``, drawn from ``rng``."""

    def neighbours(self, arch: Any) -> list[Any]:
        """Every valid architecture one edit away (local search, greedy search)."""

    def size(self) -> int | None:
        """The number of complete architectures (before merging equal ones), or None if unknown."""

    def enumerate(self) -> Iterator[Any]:
        """Every complete architecture in a fixed order (tables); may be huge, see ``size``."""

    def describe(self, partial: Any) -> str:
        """One line about a partial architecture for ``render`` (text, progress)."""

    def identity(self) -> dict[str, Any]:
        """What besides the architecture's text decides the network built from it (skeleton
        widths, cells per stage, ...): part of every cache key. Empty for the layer chain."""

    def features(self, arch: Any) -> np.ndarray:
        """A fixed-length numeric description of a complete architecture (surrogate models)."""

    # -- models (torch) -----------------------------------------------------------------------
    def build_model(self, arch: Any, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """The network for one sample shape ``(C, L)`` or ``(C, H, W)`` and ``num_classes``."""

    def count_flops(self, arch: Any, input_shape: tuple[int, ...], num_classes: int) -> int:
        """Multiply-accumulates of one forward pass of one sample."""

    def build_supernet(self, input_shape: tuple[int, ...], num_classes: int) -> Supernet:
        """One module holding the weights of every architecture of the space (weight sharing:
        the supernet evaluator, ENAS, DARTS); see ``nas_gym.spaces.supernet.base.Supernet`` for what it
        must answer. Optional: a space without it cannot use those three."""


class SpaceDefinition(Protocol):
    """What the registry needs of a space class: its params model and a constructor from it."""

    Params: ClassVar[type[SpaceParams]]

    @classmethod
    def from_params(cls, params: SpaceParams, input_shape: tuple[int, ...]) -> SearchSpace: ...


def play_actions(space: SearchSpace, actions: Sequence[int]) -> tuple[Any, bool]:
    """The partial architecture ``actions`` build from ``space.empty()`` and whether it is
    complete; stops at the first completing action. Raises ArchitectureError on a forbidden one."""
    partial, done = space.empty(), False
    for action in actions:
        if done:
            break
        if not space.mask(partial)[action]:
            raise ArchitectureError(f"action {action} is not allowed after {space.describe(partial)}")
        partial, done = space.step(partial, int(action))
    return partial, done
