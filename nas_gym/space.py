"""Search space: the op vocabulary, the rules of what may follow what, and the Architecture value.

No torch here on purpose: agents, the cache and the tabular benchmark all reason about
architectures, and none of them should pay for importing torch or depend on a device.

A network is a chain of ops closed by a fixed head (global average pooling + linear), as in
MetaQNN. Its canonical text form is the ops joined by ``|``, for example
``conv3-32|conv3-32s2|maxpool|conv5-64``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

CONV, RES, MAXPOOL, AVGPOOL, DROPOUT = "conv", "res", "maxpool", "avgpool", "dropout"
POOLS = (MAXPOOL, AVGPOOL)

# ASCII digits only, at most 9 per integer: ``\d`` alone would accept any script's digits, and
# integers too long for ``int`` (a ValueError that is not an ArchitectureError).
_OP_PATTERNS = (
    (re.compile(r"conv([0-9]{1,9})-([0-9]{1,9})(?:s([0-9]{1,9}))?"), CONV),
    (re.compile(r"res([0-9]{1,9})-([0-9]{1,9})"), RES),
    (re.compile(r"(maxpool|avgpool)"), "pool"),
    (re.compile(r"dropout(0?\.[0-9]+)"), DROPOUT),
)

OP_SYNTAX = "conv<k>-<c>[s<stride>], res<k>-<c>, maxpool, avgpool, dropout<rate> (e.g. conv3-32s2)"


class ArchitectureError(ValueError):
    """An architecture text that does not parse, or an architecture the search space forbids."""


@dataclass(frozen=True)
class Op:
    """One layer of the chain.

    :param kind: ``conv`` (conv + batch norm + ReLU), ``res`` (two 3x3-style convs with a skip),
        ``maxpool`` / ``avgpool`` (window 2, stride 2) or ``dropout``.
    :param kernel: kernel size for ``conv`` and ``res`` (odd, so padding keeps the size).
    :param channels: output channels for ``conv`` and ``res``.
    :param stride: 1 or 2 for ``conv``; a stride of 2 halves the spatial size (rounding up).
    :param rate: drop probability for ``dropout``.
    """

    kind: str
    kernel: int = 0
    channels: int = 0
    stride: int = 1
    rate: float = 0.0

    def __post_init__(self) -> None:
        if self.kind in (CONV, RES):
            if self.kernel < 1 or self.kernel % 2 == 0:
                raise ArchitectureError(f"op {self.kind}: kernel must be odd and >= 1, got {self.kernel}")
            if self.channels < 1:
                raise ArchitectureError(f"op {self.kind}: channels must be >= 1, got {self.channels}")
            if self.stride not in (1, 2) or (self.kind == RES and self.stride != 1):
                raise ArchitectureError(f"op {self.kind}: stride must be 1 or 2 (res: 1), got {self.stride}")
        elif self.kind == DROPOUT:
            if not 0.0 < self.rate < 1.0:
                raise ArchitectureError(f"op dropout: rate must be in (0, 1), got {self.rate}")
        elif self.kind not in POOLS:
            raise ArchitectureError(f"unknown op kind {self.kind!r}; expected one of {OP_SYNTAX}")

    @property
    def downsamples(self) -> bool:
        return self.kind in POOLS or (self.kind == CONV and self.stride == 2)

    def out_size(self, size: int) -> int:
        """Spatial size (length or side) after this op, for an input of ``size``."""
        if self.kind in POOLS:
            return size // 2
        if self.kind == CONV and self.stride == 2:
            return (size + 1) // 2
        return size

    def text(self) -> str:
        if self.kind == CONV:
            return f"conv{self.kernel}-{self.channels}" + (f"s{self.stride}" if self.stride != 1 else "")
        if self.kind == RES:
            return f"res{self.kernel}-{self.channels}"
        if self.kind == DROPOUT:
            # Shortest round-trip digits, never an exponent: ``:g`` rounded 0.1234567 to 0.123457
            # (two rates, one key) and wrote 1e-05, which the parser does not read back.
            return f"dropout{format(Decimal(repr(self.rate)), 'f')}"
        return self.kind

    __str__ = text

    @classmethod
    def parse(cls, text: str) -> Op:
        token = text.strip()
        for pattern, kind in _OP_PATTERNS:
            m = pattern.fullmatch(token)
            if not m:
                continue
            if kind == CONV:
                return cls(CONV, int(m[1]), int(m[2]), int(m[3] or 1))
            if kind == RES:
                return cls(RES, int(m[1]), int(m[2]))
            if kind == DROPOUT:
                return cls(DROPOUT, rate=float(m[1]))
            return cls(m[1])
        raise ArchitectureError(f"cannot parse op {token!r}; expected one of {OP_SYNTAX}")


@dataclass(frozen=True)
class Architecture:
    """An immutable chain of ops: hashable, comparable, with a canonical text and key."""

    ops: tuple[Op, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.ops, tuple) or not all(isinstance(op, Op) for op in self.ops):
            raise ArchitectureError("Architecture.ops must be a tuple of Op")

    @classmethod
    def parse(cls, text: str) -> Architecture:
        text = text.strip()
        if not text:
            raise ArchitectureError("empty architecture text; expected ops joined by '|', e.g. conv3-32|maxpool")
        return cls(tuple(Op.parse(part) for part in text.split("|")))

    def text(self) -> str:
        return "|".join(op.text() for op in self.ops)

    __str__ = text

    def key(self) -> str:
        """A digest of the canonical text: the same in every process and Python version
        (unlike ``hash()``, which is salted per process)."""
        return hashlib.sha256(self.text().encode()).hexdigest()[:20]

    def __len__(self) -> int:
        return len(self.ops)

    def append(self, op: Op) -> Architecture:
        return Architecture(self.ops + (op,))


EMPTY = Architecture(())


@dataclass(frozen=True)
class _State:
    """What the rules need to know about a prefix: depth, spatial size, kind of the last op."""

    depth: int
    size: int
    last: str | None


@dataclass(frozen=True)
class SearchSpace:
    """The vocabulary, the depth limits and the rules of what may follow what.

    Rules: at most ``max_depth`` ops and at least ``min_depth``; no downsampling op (pooling or a
    stride-2 conv) once the spatial size is below 2 (it would fall below 1 or do nothing);
    no pooling straight after pooling; no dropout straight after dropout.

    Actions are the indices of ``ops`` plus one last action, ``stop``.

    :param ops: the vocabulary, without ``stop``.
    :param max_depth: maximum number of ops in a chain.
    :param input_size: spatial size of the input (sequence length, or image side).
    :param min_depth: minimum number of ops before ``stop`` is allowed.
    """

    ops: tuple[Op, ...]
    max_depth: int
    input_size: int
    min_depth: int = 1
    _counts: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)
    _choices: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

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
    def from_texts(cls, ops: Sequence[str], max_depth: int, input_size: int, min_depth: int = 1) -> SearchSpace:
        return cls(tuple(Op.parse(t) for t in ops), max_depth, input_size, min_depth)

    @property
    def n_actions(self) -> int:
        return len(self.ops) + 1

    @property
    def stop_action(self) -> int:
        return len(self.ops)

    def action_of(self, op: Op) -> int:
        try:
            return self.ops.index(op)
        except ValueError:
            raise ArchitectureError(f"op {op} is not in this search space's vocabulary") from None

    # -- rules -------------------------------------------------------------------------------
    def _state(self, prefix: Architecture | Sequence[Op]) -> _State:
        ops = prefix.ops if isinstance(prefix, Architecture) else tuple(prefix)
        size = self.input_size
        for op in ops:
            size = op.out_size(size)
        return _State(len(ops), size, ops[-1].kind if ops else None)

    def spatial_size(self, prefix: Architecture | Sequence[Op]) -> int:
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

    def _mask_state(self, state: _State) -> np.ndarray:
        mask = np.zeros(self.n_actions, dtype=bool)
        for i, op in enumerate(self.ops):
            mask[i] = self._allowed(state, op) is None
        mask[self.stop_action] = state.depth >= self.min_depth
        return mask

    def mask(self, prefix: Architecture | Sequence[Op]) -> np.ndarray:
        """Boolean array over actions (True = allowed) after ``prefix``; the last entry is stop."""
        return self._mask_state(self._state(prefix))

    def violation(self, arch: Architecture) -> str | None:
        """Why ``arch`` is not in this space, or None if it is."""
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

    def is_valid(self, arch: Architecture) -> bool:
        return self.violation(arch) is None

    def validate(self, arch: Architecture | str) -> Architecture:
        """Parse (if text) and check ``arch``; raise ArchitectureError naming the broken rule."""
        if isinstance(arch, str):
            arch = Architecture.parse(arch)
        reason = self.violation(arch)
        if reason:
            raise ArchitectureError(f"architecture {arch.text() or '<empty>'} is not in the search space: {reason}")
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

    def sample(self, rng: np.random.Generator) -> Architecture:
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
                return Architecture(tuple(ops))
            ops.append(op)

    def enumerate(self) -> Iterator[Architecture]:
        """Every valid architecture, in a fixed depth-first order."""

        def walk(state: _State, ops: tuple[Op, ...]) -> Iterator[Architecture]:
            if state.depth >= self.min_depth:
                yield Architecture(ops)
            for op in self.ops:
                if self._allowed(state, op) is None:
                    yield from walk(self._next(state, op), ops + (op,))

        return walk(_State(0, self.input_size, None), ())

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """All valid architectures one edit away: replace, insert or remove one op."""
        ops, out = arch.ops, []
        for i in range(len(ops) + 1):
            if i < len(ops):
                out.append(ops[:i] + ops[i + 1 :])
                out.extend(ops[:i] + (new,) + ops[i + 1 :] for new in self.ops if new != ops[i])
            out.extend(ops[:i] + (new,) + ops[i:] for new in self.ops)
        seen, result = set(), []
        for cand in out:
            a = Architecture(cand)
            if a not in seen and a != arch and self.is_valid(a):
                seen.add(a)
                result.append(a)
        return result

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """A uniformly chosen valid neighbour of ``arch`` (a fresh sample if it has none)."""
        options = self.neighbours(arch)
        if not options:
            return self.sample(rng)
        return options[int(rng.integers(len(options)))]
