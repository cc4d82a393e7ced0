"""The layer chain's values: one ``Op`` (a layer) and a ``Chain`` of them (an architecture).

A network is a chain of ops closed by a fixed head (global average pooling + linear), as in
MetaQNN. Its canonical text form is the ops joined by ``|``, for example
``conv3-32|conv3-32s2|maxpool|conv5-64``. No torch here: see ``nas_gym.spaces.base``.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from decimal import Decimal

from nas_gym.spaces.base import ArchitectureError

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
class Chain:
    """An immutable chain of ops: hashable, comparable, with a canonical text and key (a chain has
    no two forms of one network, so its key digests its text)."""

    ops: tuple[Op, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.ops, tuple) or not all(isinstance(op, Op) for op in self.ops):
            raise ArchitectureError("Chain.ops must be a tuple of Op")

    @classmethod
    def parse(cls, text: str) -> Chain:
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

    def append(self, op: Op) -> Chain:
        return Chain(self.ops + (op,))


EMPTY = Chain(())


def count_flops(arch: Chain, input_shape: tuple[int, ...], num_classes: int) -> int:
    """Multiply-accumulates of one forward pass of one sample, from the architecture alone.

    Counted: convolutions (the 1x1 projections of residual blocks included) and the linear head,
    i.e. the layers whose cost grows with channels x kernel. Batch norm, ReLU, pooling, dropout
    and the residual addition are element-wise and left out, as most FLOP counters do, so the
    number ranks architectures by the work that dominates their training time.
    Spatial sizes follow ``Op.out_size``, the same rule the search space uses.
    """
    dims = len(input_shape) - 1
    channels, sizes = input_shape[0], list(input_shape[1:])
    total = 0
    for op in arch.ops:
        sizes = [op.out_size(s) for s in sizes]
        positions = math.prod(sizes)
        kernel_area = op.kernel**dims
        if op.kind == CONV:
            total += channels * op.channels * kernel_area * positions
        elif op.kind == RES:
            total += (channels + op.channels) * op.channels * kernel_area * positions
            if channels != op.channels:
                total += channels * op.channels * positions
        if op.kind in (CONV, RES):
            channels = op.channels
    return int(total + channels * num_classes)
