"""A complete user search space in one file: an MLP whose hidden widths are searched.

Each step picks the width of the next hidden layer (or ``stop`` once ``min_layers`` are chosen);
the network flattens its input, then Linear-ReLU per hidden layer, then a linear head. Use it
from a preset (``examples/mlp_space.yaml``)::

    nas-gym search --config examples/mlp_space.yaml --agent evolution --episodes 20

Everything nas-gym needs is here: the ``space:`` fields (a pydantic model), the episode rules,
the observation, text form and canonical key, sampling and mutation, and the model builder.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from nas_gym.spaces import ArchitectureError, SpaceParams


@dataclass(frozen=True)
class MLP:
    """Hidden widths, e.g. ``mlp-64-32``; the empty MLP (``mlp``) is logistic regression."""

    widths: tuple[int, ...]

    def text(self) -> str:
        return "-".join(["mlp", *map(str, self.widths)])

    def key(self) -> str:
        return hashlib.sha256(self.text().encode()).hexdigest()[:20]


class MLPParams(SpaceParams):
    kind: str = "examples/mlp_space.py:MLPSpace"
    widths: tuple[int, ...] = Field(default=(16, 64, 256), min_length=1)
    max_layers: int = Field(default=3, ge=1, le=8)
    min_layers: int = Field(default=1, ge=0)


@dataclass(frozen=True)
class MLPSpace:
    widths: tuple[int, ...]
    max_layers: int
    min_layers: int

    Params = MLPParams
    kind = "mlp"

    @classmethod
    def from_params(cls, params: MLPParams, input_shape: tuple[int, ...]) -> MLPSpace:
        return cls(tuple(params.widths), params.max_layers, params.min_layers)

    @property
    def n_actions(self) -> int:  # one per width, then stop
        return len(self.widths) + 1

    @property
    def observation_size(self) -> int:
        return self.max_layers * len(self.widths) + 1

    @property
    def max_steps(self) -> int:
        return self.max_layers + 1

    # episodes
    def empty(self) -> MLP:
        return MLP(())

    def step(self, partial: MLP, action: int) -> tuple[MLP, bool]:
        if action == len(self.widths):
            return partial, True
        grown = MLP(partial.widths + (self.widths[action],))
        return grown, len(grown.widths) == self.max_layers

    def mask(self, partial: MLP) -> np.ndarray:
        mask = np.ones(self.n_actions, dtype=bool)
        mask[-1] = len(partial.widths) >= self.min_layers
        return mask

    def observe(self, partial: MLP) -> np.ndarray:
        obs = np.zeros(self.observation_size, dtype=np.float32)
        for i, w in enumerate(partial.widths):
            obs[i * len(self.widths) + self.widths.index(w)] = 1.0
        obs[-1] = len(partial.widths) / self.max_layers
        return obs

    def actions_of(self, arch: MLP) -> list[int]:
        actions = [self.widths.index(w) for w in arch.widths]
        return actions + [len(self.widths)] if len(actions) < self.max_layers else actions

    def transition_key(self, partial: MLP):
        return len(partial.widths)

    def describe(self, partial: MLP) -> str:
        return f"{partial.text()}  ({len(partial.widths)}/{self.max_layers} layers)"

    def identity(self) -> dict:
        return {}

    # architectures
    def parse(self, text: str) -> MLP:
        head, *rest = text.strip().split("-")
        if head != "mlp" or not all(r.isdigit() for r in rest):
            raise ArchitectureError(f"cannot parse {text!r}; expected mlp-<width>-<width>..., e.g. mlp-64-16")
        return MLP(tuple(int(r) for r in rest))

    def violation(self, arch) -> str | None:
        if not isinstance(arch, MLP):
            return "not an MLP"
        if not self.min_layers <= len(arch.widths) <= self.max_layers:
            return f"needs {self.min_layers}-{self.max_layers} hidden layers"
        if any(w not in self.widths for w in arch.widths):
            return f"widths must be among {self.widths}"
        return None

    def validate(self, arch):
        arch = self.parse(arch) if isinstance(arch, str) else arch
        reason = self.violation(arch)
        if reason:
            raise ArchitectureError(f"architecture {arch.text()} is not in the search space: {reason}")
        return arch

    def enumerate(self):
        def grow(prefix):
            if len(prefix) >= self.min_layers:
                yield MLP(prefix)
            if len(prefix) < self.max_layers:
                for w in self.widths:
                    yield from grow(prefix + (w,))

        return grow(())

    def size(self) -> int:
        return sum(len(self.widths) ** d for d in range(self.min_layers, self.max_layers + 1))

    def sample(self, rng: np.random.Generator) -> MLP:
        all_archs = list(self.enumerate())  # small space: uniform by listing it
        return all_archs[int(rng.integers(len(all_archs)))]

    def neighbours(self, arch: MLP) -> list[MLP]:
        out = []
        for i in range(len(arch.widths) + 1):
            for w in self.widths:
                out.append(MLP(arch.widths[:i] + (w,) + arch.widths[i:]))  # insert
                if i < len(arch.widths) and w != arch.widths[i]:
                    out.append(MLP(arch.widths[:i] + (w,) + arch.widths[i + 1:]))  # replace
            if i < len(arch.widths):
                out.append(MLP(arch.widths[:i] + arch.widths[i + 1:]))  # remove
        return list(dict.fromkeys(a for a in out if self.violation(a) is None and a != arch))

    def mutate(self, arch: MLP, rng: np.random.Generator) -> MLP:
        options = self.neighbours(arch)
        return options[int(rng.integers(len(options)))] if options else self.sample(rng)

    def features(self, arch: MLP) -> np.ndarray:
        return self.observe(arch)

    # models
    def build_model(self, arch: MLP, input_shape: tuple[int, ...], num_classes: int):
        from torch import nn

        layers, width = [nn.Flatten(1)], math.prod(input_shape)
        for w in arch.widths:
            layers += [nn.Linear(width, w), nn.ReLU()]
            width = w
        return nn.Sequential(*layers, nn.Linear(width, num_classes))

    def count_flops(self, arch: MLP, input_shape: tuple[int, ...], num_classes: int) -> int:
        sizes = [math.prod(input_shape), *arch.widths, num_classes]
        return sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
