"""K different cells side by side: the member-stacked form of ``CellModule``s that differ.

``nas_gym.training.model_rewrite`` stacks K networks along channels when they are alike. Networks of the
cell space share their skeleton (stem, reductions, head) and differ only inside their cells, so
every layer but the cells stacks as before; a ``GroupedCellModule`` stands for the K cells at one
position. Member k reads and writes channels ``[k*C, (k+1)*C)``, as everywhere else.

How it computes: the edges are taken by source node (0, then 1, then 2: a node is complete once
every edge into it ran). At one source, all (edge, member) pairs that carry the same op form one
group, and the op runs once over the group: one gather of the members' channel slices
(``index_select``, or a view when the members are consecutive), one stacked op built by the
rewrite's own rules (a ReLU-conv-BN becomes a grouped convolution over just the group's members
and batch norm over their channels; pooling and skip work on the gathered channels as they are),
and each output slice is added into its target node at the member's channels (``index_add_``).
``none`` builds nothing, so a member without any edge into a node keeps zeros there, as
``CellModule`` returns zeros for a cell whose output is cut off. Grouping by source rather than
by edge runs the three edges out of node 0 in one call per op: fewer, larger calls. Members never
share a channel, a weight or a batch-norm statistic, so each is trained as if alone, and a
member that blows up cannot reach another.

What it buys is measured in ``docs/grouped_trainer.md``: on a 2-core CPU, little, because at
these sizes the arithmetic and memory traffic per member, not the number of calls, bound a step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from nas_gym.spaces.cell.arch import N_NODES
from nas_gym.spaces.cell.model import CellModule


def cells_differ(members: Sequence[nn.Module]) -> bool:
    """Whether ``members`` are cells that are not all built alike (alike ones stack plainly)."""
    first = members[0]
    return all(type(m) is CellModule for m in members) and any(
        m.edges != first.edges or m.names != first.names or m.channels != first.channels for m in members)


Index = torch.Tensor | slice  # members as an index tensor, or as a range when they are consecutive


def _index(members: Sequence[int]) -> Index:
    """A range when ``members`` are consecutive: a view then replaces a gather, an in-place add a
    scatter (the caller orders members so that groups are often consecutive)."""
    first = members[0]
    if list(members) == list(range(first, first + len(members))):
        return slice(first, first + len(members))
    return torch.tensor(members)


class _Gather(torch.autograd.Function):
    """Several selections of members (dim 1) of one tensor, with one backward.

    Autograd's own backward of each ``index_select`` zero-fills a gradient the size of the whole
    source and adds into it; with one op per group that was the largest single cost measured
    here (15% of a step, 8 cells x 2 seeds). Here the zeros are filled once per source node, and
    a range of members is a view, not a copy.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, *indices: Index) -> tuple[torch.Tensor, ...]:
        ctx.shape, ctx.indices = x.shape, indices
        return tuple(x[:, idx] if isinstance(idx, slice) else x.index_select(1, idx) for idx in indices)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        grad = None
        for idx, g in zip(ctx.indices, grads, strict=True):
            if g is None:
                continue
            grad = g.new_zeros(ctx.shape) if grad is None else grad
            if isinstance(idx, slice):
                grad[:, idx] += g
            else:
                grad.index_add_(1, idx, g)
        return (grad, *([None] * len(ctx.indices)))


class _Sum(torch.autograd.Function):
    """A node: the sum of terms, each added at its members (dim 1), zeros elsewhere.

    One function rather than in-place adds into a zero tensor: autograd's backward of an add
    into a slice clones the whole gradient (measured: copies and fills took 29% of a step),
    while here each term's gradient is just its members' part of the node's gradient.
    """

    @staticmethod
    def forward(ctx, shape: torch.Size, indices: tuple[Index, ...], *terms: torch.Tensor) -> torch.Tensor:
        ctx.indices = indices
        every = slice(0, shape[1])
        full = [i for i, idx in enumerate(indices) if isinstance(idx, slice) and idx == every]  # every member
        if len(full) >= 2:  # the common case when all members share an op: no zeros, no copies
            total = terms[full[0]] + terms[full[1]]
        elif full:
            total = terms[full[0]].clone(memory_format=torch.contiguous_format)
        else:
            total = terms[0].new_zeros(shape)
        for i, (idx, term) in enumerate(zip(indices, terms, strict=True)):
            if i in full[:2]:
                continue
            if isinstance(idx, slice):
                total[:, idx] += term
            else:
                total.index_add_(1, idx, term)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        parts = [grad[:, idx] if isinstance(idx, slice) else grad.index_select(1, idx) for idx in ctx.indices]
        return (None, None, *parts)


def _node(shape: torch.Size, terms: list[tuple[Index, torch.Tensor]]) -> torch.Tensor:
    indices, tensors = zip(*terms, strict=True)
    return _Sum.apply(shape, indices, *tensors)


class _Group(nn.Module):
    """One op over every (edge, member) pair that carries it out of one source node.

    :ivar op: the stacked op for ``len(source)`` pairs (built by the rewrite).
    :ivar source: the member of each pair, in the op's order.
    :ivar targets: per target node, ``(node, start, stop, members)``: the op's pairs
        ``[start, stop)`` are added into the node at those members.
    """

    def __init__(self, op: nn.Module, source: Index, targets: list[tuple[int, int, int, Index]]) -> None:
        super().__init__()
        self.op, self.source, self.targets = op, source, targets

    def to_device(self, device: torch.device) -> None:
        def move(idx: Index) -> Index:
            return idx if isinstance(idx, slice) else idx.to(device)

        self.source = move(self.source)
        self.targets = [(d, lo, hi, move(idx)) for d, lo, hi, idx in self.targets]


class GroupedCellModule(nn.Module):
    """K cells that differ, as one module on member-stacked channels.

    :param members: the K ``CellModule``s (same channel count), member k at channels
        ``[k*C, (k+1)*C)``.
    :param stack: the rewrite's rule for alike modules: given the ops of one group (one per
        pair, in the group's order), their stacked module, registered for ``write_back``.
    """

    def __init__(self, members: Sequence[CellModule], stack: Callable[[Sequence[nn.Module]], nn.Module]) -> None:
        super().__init__()
        self.members, self.channels = len(members), members[0].channels
        levels: list[list[_Group]] = []
        for src in range(N_NODES - 1):
            by_op: dict[str, list[tuple[int, int, int]]] = {}  # op -> [(target, member, index of the edge)]
            for k, m in enumerate(members):
                for j, ((s, d), name) in enumerate(zip(m.edges, m.names, strict=True)):
                    if s == src:
                        by_op.setdefault(name, []).append((d, k, j))
            level = []
            for name in sorted(by_op):
                pairs = sorted(by_op[name])  # by target, then member: each target's pairs are one slice
                op = stack([members[k].ops[j] for _, k, j in pairs])
                targets = []
                for d in sorted({d for d, _, _ in pairs}):
                    rows = [i for i, (t, _, _) in enumerate(pairs) if t == d]
                    targets.append((d, rows[0], rows[-1] + 1, _index([pairs[i][1] for i in rows])))
                level.append(_Group(op, _index([k for _, k, _ in pairs]), targets))
            levels.append(level)
        self.levels = nn.ModuleList(nn.ModuleList(level) for level in levels)
        self._device = torch.device("cpu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device != self._device:
            for level in self.levels:
                for group in level:
                    group.to_device(x.device)
            self._device = x.device
        # Nodes are kept as member views, (positions, members, C) for channels-last tensors and
        # (N, members, C * positions) otherwise: gathering or scattering whole members then
        # moves runs of contiguous floats; indexing single channels of a channels-last tensor
        # measured 3x slower (0.33 ms against 0.11 ms for 16 of 32 members, 64 x 256 x 1 x 40).
        cl = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        c, shape = self.channels, x.shape

        def view(t: torch.Tensor) -> torch.Tensor:
            if cl:
                return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1] // c, c)
            return t.reshape(t.shape[0], t.shape[1] // c, -1)

        def unview(v: torch.Tensor) -> torch.Tensor:
            if cl:
                return v.reshape(shape[0], shape[2], shape[3], v.shape[1] * c).permute(0, 3, 1, 2)
            return v.reshape(shape[0], v.shape[1] * c, *shape[2:])

        node = view(x)
        terms: list[list[tuple[Index, torch.Tensor]]] = [[] for _ in range(N_NODES)]
        for src, level in enumerate(self.levels):
            if not level:  # no member has an edge out of this node
                continue
            if src:  # every edge into it has run; a node no member reaches is zeros
                node = _node(node.shape, terms[src]) if terms[src] else view(torch.zeros_like(x))
            inputs = _Gather.apply(node, *(group.source for group in level))
            for group, gathered in zip(level, inputs, strict=True):
                out = view(group.op(unview(gathered)))
                for dst, lo, hi, idx in group.targets:
                    terms[dst].append((idx, out[:, lo:hi]))
        if not terms[-1]:
            return torch.zeros_like(x)
        return unview(_node(node.shape, terms[-1]))

    def extra_repr(self) -> str:
        return f"members={self.members}, channels={self.channels}"
