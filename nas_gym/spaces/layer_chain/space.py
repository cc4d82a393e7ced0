"""The layer-chain space (MetaQNN): append one layer per step, or stop.

Rules: at most ``max_depth`` ops and at least ``min_depth``; no downsampling op (pooling or a
stride-2 conv) once the spatial size is below 2 (it would fall below 1 or do nothing); no pooling
straight after pooling; no dropout straight after dropout. Actions are the indices of ``ops``
plus one last action, ``stop``; reaching ``max_depth`` completes the chain without one.

The partial architecture of an episode is the chain built so far (a ``Chain``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_gym.spaces.base import ArchitectureError
from nas_gym.spaces.layer_chain.chain import CONV, DROPOUT, EMPTY, POOLS, RES, Chain, Op, count_flops
from nas_gym.spaces.layer_chain.latency import ChainLayers
from nas_gym.spaces.layer_chain.params import LayerChainParams

__all__ = ["LayerChainParams", "LayerChainSpace", "count_params"]

if TYPE_CHECKING:
    from torch import nn

    from nas_gym.spaces.supernet.base import Supernet


@dataclass(frozen=True)
class _State:
    """What the rules need to know about a prefix: depth, spatial size, kind of the last op."""

    depth: int
    size: int
    last: str | None


@dataclass(frozen=True)
class LayerChainSpace:
    """The vocabulary, the depth limits and the rules of what may follow what.

    :param ops: the vocabulary, without ``stop``.
    :param max_depth: maximum number of ops in a chain.
    :param input_size: spatial size of the input (sequence length, or image side).
    :param min_depth: minimum number of ops before ``stop`` is allowed.
    :param input_shape: one sample's shape ``(C, L)`` or ``(C, H, W)``, for ``features`` (parameter
        and FLOP counts); None means one channel of length ``input_size``. Not compared: the
        rules depend on ``input_size`` alone.
    """

    ops: tuple[Op, ...]
    max_depth: int
    input_size: int
    min_depth: int = 1
    input_shape: tuple[int, ...] | None = field(default=None, compare=False)
    _counts: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)
    _choices: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)
    _neighbours: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)
    _op_index: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    kind = "layer_chain"
    Params = LayerChainParams

    def __post_init__(self) -> None:
        if not self.ops:
            raise ArchitectureError("search space: ops must not be empty")
        if len(set(self.ops)) != len(self.ops):
            raise ArchitectureError("search space: ops must not repeat")
        if not 1 <= self.min_depth <= self.max_depth:
            raise ArchitectureError(f"search space: need 1 <= min_depth <= max_depth, got {self.min_depth}, {self.max_depth}")
        if self.input_size < 1:
            raise ArchitectureError(f"search space: input_size must be >= 1, got {self.input_size}")

    @classmethod
    def from_texts(cls, ops: Sequence[str], max_depth: int, input_size: int, min_depth: int = 1,
                   input_shape: tuple[int, ...] | None = None) -> LayerChainSpace:
        return cls(tuple(Op.parse(t) for t in ops), max_depth, input_size, min_depth, input_shape)

    @classmethod
    def from_params(cls, params: LayerChainParams, input_shape: tuple[int, ...]) -> LayerChainSpace:
        """The space for data of ``input_shape``; refuses a space with no valid chain at all
        (pooling rules and min_depth can leave none: sampling would then fail mid-search)."""
        space = cls.from_texts(params.ops, params.max_depth, input_shape[1], params.min_depth, tuple(input_shape))
        if space.size() == 0:
            raise ArchitectureError(f"space: no chain of these ops satisfies min_depth {params.min_depth} on inputs "
                                    f"of size {input_shape[1]}; lower space.min_depth or add ops to space.ops")
        return space

    # -- the protocol's sizes ------------------------------------------------------------------
    @property
    def n_actions(self) -> int:
        return len(self.ops) + 1

    @property
    def stop_action(self) -> int:
        return len(self.ops)

    @property
    def observation_size(self) -> int:
        return self.max_depth * len(self.ops) + 2

    @property
    def max_steps(self) -> int:
        return self.max_depth + 1  # a full chain needs no stop, but a forbidden stop still takes a step

    def action_of(self, op: Op) -> int:
        try:
            return self.ops.index(op)
        except ValueError:
            raise ArchitectureError(f"op {op} is not in this search space's vocabulary") from None

    # -- episodes ------------------------------------------------------------------------------
    def empty(self) -> Chain:
        return EMPTY

    def step(self, partial: Chain, action: int) -> tuple[Chain, bool]:
        if action == self.stop_action:
            return partial, True
        arch = partial.append(self.ops[action])
        return arch, len(arch) == self.max_depth

    def observe(self, partial: Chain) -> np.ndarray:
        """One one-hot row per position (zeros past the end), then depth / max_depth and the
        spatial size / input size."""
        n_ops = len(self.ops)
        obs = np.zeros(self.observation_size, dtype=np.float32)
        for i, op in enumerate(partial.ops):
            obs[i * n_ops + self.action_of(op)] = 1.0
        obs[-2] = len(partial) / self.max_depth
        obs[-1] = self.spatial_size(partial) / self.input_size
        return obs

    def actions_of(self, arch: Chain) -> list[int]:
        actions = [self.action_of(op) for op in arch.ops]
        return actions + [self.stop_action] if len(actions) < self.max_depth else actions

    def transition_key(self, partial: Chain) -> Hashable:
        return self._state(partial)

    def describe(self, partial: Chain) -> str:
        return (f"{partial.text() or '<empty>'}  (depth {len(partial)}/{self.max_depth}, "
                f"spatial size {self.spatial_size(partial)})")

    def identity(self) -> dict[str, Any]:
        return {}  # a chain's text names its whole network

    def parse(self, text: str) -> Chain:
        return Chain.parse(text)

    # -- rules -------------------------------------------------------------------------------
    def _state(self, prefix: Chain | Sequence[Op]) -> _State:
        ops = prefix.ops if isinstance(prefix, Chain) else tuple(prefix)
        size = self.input_size
        for op in ops:
            size = op.out_size(size)
        return _State(len(ops), size, ops[-1].kind if ops else None)

    def spatial_size(self, prefix: Chain | Sequence[Op]) -> int:
        return self._state(prefix).size

    def _allowed(self, state: _State, op: Op) -> str | None:
        """None if ``op`` may follow a prefix in ``state``, else the reason it may not."""
        if state.depth >= self.max_depth:
            return f"depth limit {self.max_depth} reached"
        if op.downsamples and state.size < 2:
            return f"{op} would shrink spatial size {state.size} below 1"
        if op.kind in POOLS and state.last in POOLS:
            return f"{op} straight after pooling"
        if op.kind == DROPOUT and state.last == DROPOUT:
            return f"{op} straight after dropout"
        return None

    def _next(self, state: _State, op: Op) -> _State:
        return _State(state.depth + 1, op.out_size(state.size), op.kind)

    def mask(self, prefix: Chain | Sequence[Op]) -> np.ndarray:
        """Boolean array over actions (True = allowed) after ``prefix``; the last entry is stop."""
        state = self._state(prefix)
        mask = np.zeros(self.n_actions, dtype=bool)
        for i, op in enumerate(self.ops):
            mask[i] = self._allowed(state, op) is None
        mask[self.stop_action] = state.depth >= self.min_depth
        return mask

    def violation(self, arch: Chain) -> str | None:
        """Why ``arch`` is not in this space, or None if it is."""
        if not isinstance(arch, Chain):
            return f"{type(arch).__name__} is not a layer chain"
        state = _State(0, self.input_size, None)
        for op in arch.ops:
            if op not in self.ops:
                return f"op {op} is not in this search space's vocabulary ({', '.join(map(str, self.ops))})"
            reason = self._allowed(state, op)
            if reason:
                return f"position {state.depth}: {reason}"
            state = self._next(state, op)
        if state.depth < self.min_depth:
            return f"needs at least {self.min_depth} ops, got {state.depth}"
        return None

    def is_valid(self, arch: Chain) -> bool:
        return self.violation(arch) is None

    def validate(self, arch: Chain | str) -> Chain:
        """Parse (if text) and check ``arch``; raise ArchitectureError naming the broken rule."""
        if isinstance(arch, str):
            arch = Chain.parse(arch)
        reason = self.violation(arch)
        if reason:
            text = arch.text() if isinstance(arch, Chain) else str(arch)
            raise ArchitectureError(f"architecture {text or '<empty>'} is not in the search space: {reason}")
        return arch

    # -- counting, sampling, enumerating, mutating ------------------------------------------
    def _count(self, state: _State) -> int:
        """Number of valid architectures that extend a prefix in ``state`` (itself included)."""
        if state in self._counts:
            return self._counts[state]
        total = int(state.depth >= self.min_depth)
        for op in self.ops:
            if self._allowed(state, op) is None:
                total += self._count(self._next(state, op))
        self._counts[state] = total
        return total

    def size(self) -> int:
        """Number of valid architectures in the space (exact, by dynamic programming)."""
        return self._count(_State(0, self.input_size, None))

    def _sampling_choices(self, state: _State) -> tuple[list, np.ndarray]:
        """Next ops from ``state`` (None = stop) with their cumulative sampling probabilities."""
        if state not in self._choices:
            options: list[tuple[Op | None, _State | None, int]] = []
            if state.depth >= self.min_depth:
                options.append((None, None, 1))
            for op in self.ops:
                if self._allowed(state, op) is None:
                    nxt = self._next(state, op)
                    options.append((op, nxt, self._count(nxt)))
            weights = np.array([float(c) for _, _, c in options])
            self._choices[state] = ([(op, nxt) for op, nxt, _ in options], np.cumsum(weights / weights.sum()))
        return self._choices[state]

    def sample(self, rng: np.random.Generator) -> Chain:
        """An architecture drawn uniformly from all valid ones.

        Each choice is weighted by the number of valid completions behind it, so every
        architecture is equally likely (a uniform choice per step would favour short chains).
        """
        state, ops = _State(0, self.input_size, None), []
        while True:
            options, cumulative = self._sampling_choices(state)
            i = min(int(np.searchsorted(cumulative, rng.random(), side="right")), len(options) - 1)
            op, state = options[i]
            if op is None:
                return Chain(tuple(ops))
            ops.append(op)

    def enumerate(self) -> Iterator[Chain]:
        """Every valid architecture, in a fixed depth-first order."""

        def walk(state: _State, ops: tuple[Op, ...]) -> Iterator[Chain]:
            if state.depth >= self.min_depth:
                yield Chain(ops)
            for op in self.ops:
                if self._allowed(state, op) is None:
                    yield from walk(self._next(state, op), ops + (op,))

        return walk(_State(0, self.input_size, None), ())

    def neighbours(self, arch: Chain) -> list[Chain]:
        """All valid architectures one edit away: replace, insert or remove one op. Memoised per
        chain: evolution mutates the same few parents again and again (in a 3,000-episode run,
        about 400 distinct parents for 3,000 mutations), and checking ~50 candidates from scratch
        made each proposal cost more than a table lookup."""
        cached = self._neighbours.get(arch)
        if cached is None:
            cached = self._neighbours[arch] = tuple(self._all_neighbours(arch))
        return list(cached)

    def _all_neighbours(self, arch: Chain) -> list[Chain]:
        ops, out = arch.ops, []
        for i in range(len(ops) + 1):
            if i < len(ops):
                out.append(ops[:i] + ops[i + 1 :])
                out.extend(ops[:i] + (new,) + ops[i + 1 :] for new in self.ops if new != ops[i])
            out.extend(ops[:i] + (new,) + ops[i:] for new in self.ops)
        seen, result = set(), []
        for cand in out:
            a = Chain(cand)
            if a not in seen and a != arch and self.is_valid(a):
                seen.add(a)
                result.append(a)
        return result

    def mutate(self, arch: Chain, rng: np.random.Generator) -> Chain:
        """A uniformly chosen valid neighbour of ``arch`` (a fresh sample if it has none)."""
        options = self.neighbours(arch)
        if not options:
            return self.sample(rng)
        return options[int(rng.integers(len(options)))]

    # -- features and models ---------------------------------------------------------------------
    def features(self, arch: Chain) -> np.ndarray:
        """What a surrogate model needs to tell chains apart, in a fixed order: the observation
        (per-position one-hots, depth, final spatial size), each op's count, the spatial size
        (over the input size) and channel count after each position (zeros past the end), then
        log10 of the body's parameters and FLOPs (the head, a function of the last channel count,
        left out: the space does not know the class count), the last channel count, the number
        of downsampling ops and the receptive field over the input size.

        Trees split on thresholds, so these are raw numbers, not scaled: what matters is that
        the summaries a network's accuracy depends on (capacity, cost, how much of the input one
        output sees) are single features instead of interactions the model would have to learn.
        """
        # One pass in plain Python, one array at the end: a surrogate query costs little more than this.
        shape = self.input_shape or (1, self.input_size)
        n_ops, depth, n = len(self.ops), self.max_depth, len(arch.ops)
        out = np.zeros(self.observation_size + n_ops + 2 * depth + 5, dtype=np.float32)
        counts, sizes, widths = self.observation_size, self.observation_size + n_ops, self.observation_size + n_ops + depth
        channels, size, field_, jump, downsamples = shape[0], self.input_size, 1, 1, 0
        if not self._op_index:  # a dict lookup, not a scan comparing ops field by field
            self._op_index.update({op: i for i, op in enumerate(self.ops)})
        for i, op in enumerate(arch.ops):
            a = self._op_index[op]
            out[i * n_ops + a] = 1.0
            out[counts + a] += 1.0
            if op.kind in (CONV, RES):
                field_ += (op.kernel - 1) * (2 if op.kind == RES else 1) * jump
                channels = op.channels
            elif op.kind in POOLS:
                field_ += jump  # window 2
            if op.downsamples:
                jump, downsamples = jump * 2, downsamples + 1
            size = op.out_size(size)
            out[sizes + i], out[widths + i] = size / self.input_size, channels
        out[depth * n_ops], out[depth * n_ops + 1] = n / depth, size / self.input_size
        out[-5:] = (math.log10(1 + count_params(arch, shape, 0)), math.log10(1 + count_flops(arch, shape, 0)),
                    channels, downsamples, field_ / self.input_size)
        return out

    def build_model(self, arch: Chain, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        from nas_gym.spaces.layer_chain.model import build_model

        return build_model(arch, input_shape, num_classes)

    def count_flops(self, arch: Chain, input_shape: tuple[int, ...], num_classes: int) -> int:
        return count_flops(arch, input_shape, num_classes)

    def count_params(self, arch: Chain, input_shape: tuple[int, ...], num_classes: int) -> int:
        """Trainable parameters of the network ``build_model`` makes, without building it."""
        return count_params(arch, input_shape, num_classes)

    def build_supernet(self, input_shape: tuple[int, ...], num_classes: int) -> Supernet:
        from nas_gym.spaces.layer_chain.supernet import LayerChainSupernet

        return LayerChainSupernet(self, input_shape, num_classes)

    def latency_layers(self, input_shape: tuple[int, ...], num_classes: int) -> ChainLayers:
        """The layers the latency model times (``nas_gym.spaces.capabilities.ProvidesLatencyLayers``)."""
        return ChainLayers(self, input_shape, num_classes)


def count_params(arch: Chain, input_shape: tuple[int, ...], num_classes: int) -> int:
    """Trainable parameters of ``layer_chain_model.build_model``'s network, from the chain alone
    (no torch): convs without bias plus their batch norm's scale and shift, a residual block's two
    convs and, when it changes the channel count, its 1x1 projection, then the linear head."""
    kernel_power = len(input_shape) - 1
    channels, total = input_shape[0], 0
    for op in arch.ops:
        if op.kind == CONV:
            total += channels * op.channels * op.kernel**kernel_power + 2 * op.channels
        elif op.kind == RES:
            total += (channels + op.channels) * op.channels * op.kernel**kernel_power + 4 * op.channels
            if channels != op.channels:
                total += channels * op.channels + 2 * op.channels
        if op.kind in (CONV, RES):
            channels = op.channels
    return total + channels * num_classes + num_classes
