"""Rewrite built networks into one network that trains faster: K seeds side by side, 1-D as 2-D.

Two rewrites, done in one pass over any network a search space builds from the usual layers
(convolutions, batch norm, pooling, ReLU, identity, dropout, flatten, linear) and containers
whose ``forward`` only routes tensors, adds them or makes zeros like them:

* **Members stacked along channels.** K networks of one architecture (K seeds) become one network
  K times as wide in which nothing mixes members: ``ConvNd(c_in, c_out, groups=g)`` becomes
  ``ConvNd(K*c_in, K*c_out, groups=K*g)`` (a grouped convolution is exactly K independent ones),
  batch norm over ``K*C`` channels keeps per-channel, so per-member, statistics, a linear head
  becomes K independent linear maps (``GroupedLinear``, one batched matmul), and element-wise ops
  and pooling work on stacked channels unchanged. Member k reads channels ``[k*C, (k+1)*C)`` of
  the input and writes outputs ``[k*n, (k+1)*n)``. One step of the wide network costs far fewer
  kernel launches and Python calls than K steps of the narrow ones, which is what small networks
  on a CPU are bound by.
* **Cells that differ** (the cell space: one skeleton, K cells). Where the members hold
  ``CellModule``s that are not built alike, a ``GroupedCellModule`` (``nas_gym.training.grouped_cell``)
  takes their place: each op runs once over the members that use it, stacked by these same
  rules; every other layer stacks as above.
* **1-D as channels-last 2-D** (``lift=True``). A ``Conv1d`` runs as a ``Conv2d`` with a ``1 x k``
  kernel on ``(N, C, 1, L)`` tensors in channels-last memory: oneDNN's convolutions need no
  layout reorders then, and batch norm and pooling vectorise over channels instead of over a
  short length. Measured on a 2-core CPU with one thread: a median 1.44x (0.94-2.03x) per
  evaluation over 8 MNIST-1D networks under 0.3 M multiply-accumulates (``scripts/bench_overhead.py``).

Weights are copied in (member k's tensors become its slice) and copied back after training
(``write_back``), so the members end up trained as if they had been trained one by one. A module
the rules do not cover raises ``RewriteError``; a container whose ``forward`` mixes channels or
assumes a rank (a concatenation, a ``mean(-1)``) builds, so every rewrite is checked numerically
against its members (``rewrite`` returns None when the outputs differ) and the trainer then
trains the members the plain way.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd

from nas_gym.errors import NasGymError
from nas_gym.training.grouped_cell import GroupedCellModule, cells_differ


class RewriteError(NasGymError, ValueError):
    """A network the rewrite has no rule for (a layer with weights it does not know)."""


class GroupedLinear(nn.Module):
    """K independent linear maps: ``(N, K*in) -> (N, K*out)``, member k on its own slice.

    :ivar weight: ``(K, out, in)``, member k's ``nn.Linear.weight`` at ``[k]``.
    :ivar bias: ``(K, out)`` or None.
    """

    def __init__(self, members: int, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(members, out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        xs = x.reshape(n, self.members, self.in_features).transpose(0, 1)  # (K, N, in)
        w = self.weight.transpose(1, 2)
        y = torch.bmm(xs, w) if self.bias is None else torch.baddbmm(self.bias.unsqueeze(1), xs, w)
        return y.transpose(0, 1).reshape(n, self.members * self.out_features)

    def extra_repr(self) -> str:
        return f"members={self.members}, in_features={self.in_features}, out_features={self.out_features}"


class MemberDropout(nn.Module):
    """Dropout with one generator per member, so member k drops exactly the units a separate run
    with seed k would drop.

    A separate run seeds torch's global generator with its seed and nothing else draws from it
    while training, so its masks are ``bernoulli(1 - p)`` draws over the member's tensor in
    contiguous ``(N, C, ...)`` order, layer after layer, step after step. Each member's mask here is
    drawn the same way from a generator seeded with the member's seed (``seed_members``), whatever
    the memory format of the stacked tensor. On a CPU the masks are bit-identical to the separate
    runs'; a GPU's own dropout kernel draws differently, so there the members get independent masks
    of the right rate, not the same ones.
    """

    def __init__(self, p: float, members: int) -> None:
        super().__init__()
        self.p, self.members = p, members
        self.generators: list[torch.Generator] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if len(self.generators) != self.members:
            raise RuntimeError("MemberDropout needs seed_members(net, seeds) before training")
        shape = (x.shape[0], x.shape[1] // self.members, *x.shape[2:])
        noise = torch.cat([torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(1 - self.p, generator=g)
                           for g in self.generators], dim=1)
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            noise = noise.contiguous(memory_format=torch.channels_last)  # mixed formats run a slow kernel
        return x * noise.div_(1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, members={self.members}"


class _MeanOverPositions(torch.autograd.Function):
    """Mean over every position whose gradient keeps the input's memory format."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.shape = x.shape
        ctx.channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        ctx.scale = 1.0 / math.prod(x.shape[2:])
        return x.sum(tuple(range(2, x.dim())), keepdim=True).mul_(ctx.scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = (grad * ctx.scale).expand(ctx.shape)
        return grad.contiguous(memory_format=torch.channels_last) if ctx.channels_last else grad


class GlobalAvgPool(nn.Module):
    """The mean over all positions, ``(N, C, ...) -> (N, C, 1, ...)``, for channels-last tensors.

    ``mean`` (and adaptive pooling to size 1) hands back a gradient in the plain memory format;
    every backward before it then mixes formats and takes a slow path: measured here, a ReLU
    backward took about 1 ms instead of 0.16 ms (64 x 96 x 20), a pooling backward 1.8 ms.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _MeanOverPositions.apply(x)


class _AnyRankBatchNorm(_BatchNorm):
    """Batch norm that accepts any rank: a lifted ``BatchNorm1d`` sees ``(N, C, 1, L)``."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {input.dim()}-D)")


def seed_members(net: nn.Module, seeds: Sequence[int], device: torch.device) -> None:
    """Give every ``MemberDropout`` of ``net`` fresh generators, one per member, seeded as a
    separate run seeds torch's global generator (shared by all layers, as that one is)."""
    generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    for module in net.modules():
        if isinstance(module, MemberDropout):
            module.generators = generators


def _one(value: int | tuple[int, ...]) -> int:
    return value[0] if isinstance(value, tuple) else value


def _empty_leaf(first: nn.Module, k: int, lift: bool) -> nn.Module:
    """A module of the right kind and size for ``k`` stacked copies of ``first``; weights unset."""
    lift_1d = lift and isinstance(first, (nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d,
                                          nn.AdaptiveMaxPool1d))
    if isinstance(first, nn.modules.conv._ConvNd) and not first.transposed:
        c_in, c_out, groups, bias = k * first.in_channels, k * first.out_channels, k * first.groups, first.bias is not None
        if lift_1d:
            padding = first.padding if isinstance(first.padding, str) else (0, _one(first.padding))
            return nn.Conv2d(c_in, c_out, (1, _one(first.kernel_size)), (1, _one(first.stride)), padding,
                             (1, _one(first.dilation)), groups, bias, first.padding_mode)
        return type(first)(c_in, c_out, first.kernel_size, first.stride, first.padding, first.dilation, groups, bias,
                           first.padding_mode)
    if isinstance(first, _BatchNorm):
        cls = _AnyRankBatchNorm if lift else type(first)
        return cls(k * first.num_features, first.eps, first.momentum, first.affine, first.track_running_stats)
    if lift_1d and isinstance(first, nn.MaxPool1d):
        return nn.MaxPool2d((1, _one(first.kernel_size)), (1, _one(first.stride)), (0, _one(first.padding)),
                            (1, _one(first.dilation)), first.return_indices, first.ceil_mode)
    if lift_1d and isinstance(first, nn.AvgPool1d):
        return nn.AvgPool2d((1, _one(first.kernel_size)), (1, _one(first.stride)), (0, _one(first.padding)),
                            first.ceil_mode, first.count_include_pad)
    if lift_1d and isinstance(first, nn.AdaptiveAvgPool1d):
        size = _one(first.output_size)
        return GlobalAvgPool() if size == 1 else nn.AdaptiveAvgPool2d((1, size))
    if lift_1d and isinstance(first, nn.AdaptiveMaxPool1d):
        return nn.AdaptiveMaxPool2d((1, _one(first.output_size)), first.return_indices)
    if type(first) is nn.Linear:
        if k == 1:
            return nn.Linear(first.in_features, first.out_features, first.bias is not None)
        return GroupedLinear(k, first.in_features, first.out_features, first.bias is not None)
    if type(first) is nn.Dropout:
        return MemberDropout(first.p, k)
    if isinstance(first, _DropoutNd):
        raise RewriteError(f"{type(first).__name__}: only plain nn.Dropout has a per-member rule")
    if first._parameters or any(b is not None for b in first._buffers.values()):
        raise RewriteError(f"{type(first).__name__} has weights and no stacking rule")
    return copy.copy(first)  # parameter-free: ReLU, Identity, Flatten, pooling that needs no lift


def _fill(new: nn.Module, members: Sequence[nn.Module]) -> None:
    """Replace the new module's (meta) tensors by the members' stacked: member k's tensor becomes
    slice k (``K*shape`` flattened), on the members' device and dtype."""
    k = len(members)
    for store in ("_parameters", "_buffers"):
        fresh = getattr(new, store)
        for name in list(fresh):
            if fresh[name] is None:
                continue
            originals = [getattr(m, store)[name] for m in members]
            parts = [t.detach() for t in originals]
            if fresh[name].numel() == k * parts[0].numel():
                value = torch.stack([p.reshape(-1) for p in parts]).reshape(fresh[name].shape)
            elif all(torch.equal(p, parts[0]) for p in parts):  # shared counters (num_batches_tracked)
                value = parts[0].clone()
            else:
                raise RewriteError(f"{type(new).__name__}.{name}: members differ in a tensor that cannot be stacked")
            fresh[name] = nn.Parameter(value, requires_grad=originals[0].requires_grad) if store == "_parameters" else value


def _rewrite(members: Sequence[nn.Module], lift: bool, pairs: list[tuple[nn.Module, Sequence[nn.Module]]]) -> nn.Module:
    first, k = members[0], len(members)
    if cells_differ(members):  # different cells of one skeleton: each op runs once over its members
        return GroupedCellModule(members, lambda ops: _rewrite(ops, lift, pairs))
    if any(type(m) is not type(first) or list(m._modules) != list(first._modules) for m in members):
        raise RewriteError(f"members differ in structure at {type(first).__name__}")
    if not first._modules:
        if any(m.extra_repr() != first.extra_repr() for m in members):
            raise RewriteError(f"members differ at {first!r}")
        with torch.device("meta"):  # no initialisation: no time spent, no draw from the global RNG
            new = _empty_leaf(first, k, lift)
        _fill(new, members)
        pairs.append((new, members))
        new.train(first.training)
        return new
    if first._parameters or any(b is not None for b in first._buffers.values()):
        raise RewriteError(f"{type(first).__name__} holds weights beside its submodules; no rule for it")
    new = copy.copy(first)
    new._parameters, new._buffers = {}, {}
    new._modules = {name: None if child is None else _rewrite([m._modules[name] for m in members], lift, pairs)
                    for name, child in first._modules.items()}
    return new


class Rewritten:
    """One network standing for ``members``; ``write_back`` puts its trained weights into them.

    :ivar net: the network to train; its input is ``prepare(x_1, ..., x_K)``.
    :ivar members: how many networks it stands for.
    :ivar lifted: whether 1-D layers run as 2-D (the input then gets a height of 1).
    """

    def __init__(self, net: nn.Module, members: Sequence[nn.Module], lifted: bool,
                 pairs: list[tuple[nn.Module, Sequence[nn.Module]]]) -> None:
        self.net, self.members, self.lifted = net, len(members), lifted
        self._models, self._pairs = list(members), pairs

    def prepare(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Member k's batch in channels ``[k*C, (k+1)*C)``; ``(N, C, L)`` becomes channels-last
        ``(N, K*C, 1, L)`` when lifted."""
        x = xs[0] if len(xs) == 1 else torch.cat(list(xs), dim=1)
        return x.unsqueeze(2).contiguous(memory_format=torch.channels_last) if self.lifted else x

    @torch.no_grad()
    def write_back(self) -> None:
        for new, members in self._pairs:
            for store in ("_parameters", "_buffers"):
                for name, value in getattr(new, store).items():
                    if value is None:
                        continue
                    for k, m in enumerate(members):
                        target = getattr(m, store)[name]
                        source = value.reshape(len(members), -1)[k] if value.numel() != target.numel() else value
                        target.copy_(source.reshape(target.shape))
        for m in self._models:
            m.train(self.net.training)

    @torch.no_grad()
    def matches(self, input_shape: tuple[int, ...], rtol: float = 1e-4, atol: float = 1e-5) -> bool:
        """Whether ``net`` computes each member's function, on a random batch in eval mode (so
        running statistics and random streams are left alone)."""
        device = next(iter(self.net.parameters()), torch.empty(0)).device
        x = torch.randn((3, *input_shape), generator=torch.Generator().manual_seed(0)).to(device)
        modes = [m.training for m in self._models]
        net_mode = self.net.training
        try:
            for m in [*self._models, self.net]:
                m.eval()
            want = [m(x).reshape(3, -1) for m in self._models]
            got = self.net(self.prepare([x] * self.members)).reshape(3, self.members, -1)
        except (RuntimeError, ValueError):  # a forward that assumes a rank or a channel count
            return False
        finally:
            for m, mode in zip(self._models, modes, strict=True):
                m.train(mode)
            self.net.train(net_mode)
        return got.shape[-1] == want[0].shape[-1] and all(
            torch.allclose(got[:, i], w, rtol=rtol, atol=atol, equal_nan=True) for i, w in enumerate(want))


def rewrite(members: Sequence[nn.Module], input_shape: tuple[int, ...], *, lift: bool) -> Rewritten | None:
    """One network for ``members`` (built alike, weights of each seed), checked against them.

    :param members: networks of one architecture, on one device; unchanged until ``write_back``.
    :param input_shape: one sample's shape, ``(C, L)`` or ``(C, H, W)``, for the check.
    :param lift: run 1-D layers as channels-last 2-D ones (CPU speed); ignored for 2-D inputs.
    :returns: the rewritten network, or None if it does not compute what the members compute.
    :raises RewriteError: a layer with weights that no rule covers, or members that differ.
    """
    lift = lift and len(input_shape) == 2
    pairs: list[tuple[nn.Module, Sequence[nn.Module]]] = []
    result = Rewritten(_rewrite(list(members), lift, pairs), members, lift, pairs)
    return result if result.matches(input_shape) else None


def unchanged(model: nn.Module) -> Rewritten:
    """The identity rewrite: ``model`` trained as it is (no copy, nothing to write back)."""
    return Rewritten(model, [model], False, [])

