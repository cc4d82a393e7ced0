"""Zero-cost proxies: score an untrained network from one minibatch instead of training it.

Abdelfattah et al. (2021) found that a few scores computed at initialisation rank networks
almost as well as short training does, at about a thousandth of the cost (Spearman 0.74 for
synflow and 0.73 for jacob_cov over NAS-Bench-201). They make the env cheap enough to study
agents on bigger spaces, and make a useful prior. ZiCo (2023) warns that few of them beat the
plain parameter count consistently, so ``params`` and ``flops`` are offered as proxies too: a
proxy result only means something next to those two baselines.

Every score is a deterministic function of (architecture, minibatch, seed): the weights are
drawn from the seed inside a forked torch RNG, so the caller's random streams are untouched,
and the minibatch is fixed at construction.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_gym.config import Config, ConfigError
from nas_gym.data import Dataset, load_dataset
from nas_gym.errors import NasGymError
from nas_gym.evaluator_kinds import KINDS
from nas_gym.evaluators.base import EvalResult, EvalStats, EvaluatorBase
from nas_gym.spaces.base import Architecture
from nas_gym.training.train import count_params, cpu_threads, forked_rng, resolve_device, seed_torch

PROXY_NAMES = KINDS["proxy"].variants  # the registry's list: config help and errors name the same proxies
# Positive scores spanning orders of magnitude (synflow is a product over layers): they are
# normalised on a log scale. jacob_cov is already a log-determinant.
_LOG_SCALED = frozenset({"synflow", "snip", "grad_norm", "params", "flops"})
# zero-cost-nas scores NAS-Bench-201 with one batch of 64; more would only slow every proxy down.
DEFAULT_BATCH_SIZE = 64
# Enough architectures for a stable mean and spread of log-scores, cheap enough to draw at
# construction (well under a second for most proxies on the tiny presets).
CALIBRATION_SIZE = 32


class ProxyError(NasGymError, ValueError):
    """A proxy that is undefined for a network (e.g. jacob_cov of a network without ReLUs)."""


# -- the proxies ------------------------------------------------------------------------------
def _weights(model: nn.Module) -> list[torch.Tensor]:
    """Weights of the conv and linear layers: the connections SNIP and synflow prune, as in
    zero-cost-nas. Batch-norm scales are per channel, not connections, and are left out."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]


@contextlib.contextmanager
def _scoring_mode(model: nn.Module) -> Iterator[None]:
    """Batch norm on batch statistics (the running statistics of a fresh network are
    placeholders) and dropout off (one random mask is not the network); modes restored after."""
    modes = {m: m.training for m in model.modules()}
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.training = training


def synflow(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Tanaka et al. (2020): ``sum |theta * dR/dtheta|`` with ``R`` the sum of the outputs of
    the network with absolute-valued weights on an all-ones input; it needs no data.

    Scored on a float64 copy, because the product over layers overflows float32 on deep wide
    networks, and in eval mode: a fresh batch norm (mean 0, variance 1) is then a near-identity
    rather than a per-sample normalisation that would cancel the signal of a batch of one.
    """
    device = next(model.parameters()).device
    if device.type == "mps":  # no float64 on MPS
        device = torch.device("cpu")
    net = copy.deepcopy(model).to(device=device, dtype=torch.float64).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    weights = _weights(net)
    out = net(torch.ones((1, *input_shape), dtype=torch.float64, device=device))
    grads = torch.autograd.grad(out.sum(), weights)
    return float(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads, strict=True)))


def jacob_cov(model: nn.Module, x: torch.Tensor) -> float:
    """NASWOT (Mellor et al. 2021): ``log |K|`` with ``K = c c^T + (1 - c)(1 - c)^T`` and ``c``
    the binary codes (active or not) of every ReLU unit for each input of the batch.

    ``K[i, j]`` counts the units on which inputs i and j agree, so a network that maps
    different inputs to distinct activation patterns gets a large determinant. The name is
    zero-cost-nas's; the formula is NASWOT's published kernel, not the earlier Jacobian one.

    :raises ProxyError: the network has no ReLU (pooling only), so ``K`` would be zero.
    """
    kernel: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        c = (out.detach() > 0).flatten(1)
        c = (c.cpu() if c.device.type == "mps" else c).to(torch.float64)  # no float64 on MPS
        k = c @ c.T + (1.0 - c) @ (1.0 - c).T
        if kernel:
            kernel[0] += k
        else:
            kernel.append(k)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad(), _scoring_mode(model):
            model(x)
    finally:
        for h in handles:
            h.remove()
    if not kernel:
        raise ProxyError("jacob_cov: the network has no ReLU activations to score")
    sign, logdet = torch.linalg.slogdet(kernel[0].cpu())
    return float(logdet) if sign > 0 else -math.inf


def _loss_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], tuple]:
    """Weights and the gradients of the minibatch's cross-entropy; ``autograd.grad`` leaves no
    ``.grad`` behind on the caller's model."""
    weights = _weights(model)
    with _scoring_mode(model):
        loss = F.cross_entropy(model(x), y)
    return weights, torch.autograd.grad(loss, weights)


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Lee et al. (2019): connection sensitivity ``sum |dL/dw * w|``, i.e. how much the loss
    would move if each connection were removed."""
    weights, grads = _loss_grads(model, x, y)
    return float(sum((w.detach() * g).abs().sum(dtype=torch.float64) for w, g in zip(weights, grads, strict=True)))


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over conv and linear layers of the L2 norm of the loss gradient of their weights."""
    _, grads = _loss_grads(model, x, y)
    return float(sum(g.double().norm() for g in grads))


def proxy_score(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, flops: int) -> float:
    """The raw score of proxy ``name`` for ``model`` on the batch ``(x, y)``; ``flops`` is the
    model's multiply-accumulates per sample (the ``flops`` baseline returns it).

    :raises ValueError: ``name`` is not in ``PROXY_NAMES``.
    :raises ProxyError: the proxy is undefined for this network.
    """
    if name == "synflow":
        return synflow(model, tuple(x.shape[1:]))
    if name == "jacob_cov":
        return jacob_cov(model, x)
    if name == "snip":
        return snip(model, x, y)
    if name == "grad_norm":
        return grad_norm(model, x, y)
    if name == "params":
        return float(count_params(model))
    if name == "flops":
        return float(flops)
    raise ValueError(f"unknown proxy {name!r}; choose one of {', '.join(PROXY_NAMES)}")


def proxy_batch(data: Dataset, batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``batch_size`` examples of a seeded permutation of the training split: a
    random rather than a leading slice, so the batch is not whatever order the file had."""
    order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(seed))
    idx = order[: min(batch_size, len(order))].to(data.device)
    return data.x_train[idx], data.y_train[idx]


# -- the evaluator ----------------------------------------------------------------------------
def logistic(z: float) -> float:
    """``1 / (1 + exp(-z))`` without overflow for large ``|z|``."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True)
class _Computed:
    """One architecture's raw outcome, kept so a repeat costs nothing and is charged as a hit."""

    score: float
    params: int
    flops: int
    seconds: float
    reason: str = ""  # empty when the score is usable


class ProxyEvaluator(EvaluatorBase):
    """Scores architectures with a zero-cost proxy; ``val_acc`` is the proxy mapped into (0, 1).

    Normalisation: a raw score ``s`` becomes ``t = log(s)`` for the positive, multiplicative
    proxies (synflow, snip, grad_norm, params, flops; jacob_cov is already a log), then
    ``val_acc = logistic((t - center) / scale)``. ``center`` and ``scale`` are the mean and
    standard deviation of ``t`` over ``calibration_size`` architectures drawn uniformly from
    the space with ``np.random.default_rng(config.train.seed)`` at construction, and never
    change afterwards. The map is strictly increasing, so rewards rank architectures exactly
    as the raw proxy does; the spread of the space's scores lands around 0.5 (one standard
    deviation either side is 0.27 to 0.73), where reward differences are largest, whatever
    units the proxy has. The value is a reward, not an accuracy: compare rankings, not levels.

    A proxy that comes out NaN or infinite, or raises, gives a failed result with the reason;
    so does a network over ``config.train.max_params``, as in the training evaluator, so both
    search the same feasible set. Results are computed once per architecture and kept in
    memory (not in the training cache, whose key describes a training recipe); a repeat is
    charged as a cache hit.

    :param config: the preset; ``train.seed`` seeds the weights, the minibatch and the
        calibration sample, ``runtime`` says where the proxy runs.
    :param name: one of ``PROXY_NAMES``.
    :param data: an already-loaded dataset matching ``config.data``; default: loaded.
    :param batch_size: examples in the one minibatch (jacob_cov, snip, grad_norm).
    :param calibration_size: architectures sampled to fix the normalisation.
    :raises ConfigError: unknown proxy, mismatched data, or an unavailable device.
    """

    def __init__(self, config: Config, name: str, data: Dataset | None = None, *,
                 batch_size: int = DEFAULT_BATCH_SIZE, calibration_size: int = CALIBRATION_SIZE) -> None:
        if name not in PROXY_NAMES:
            raise ConfigError(f"unknown proxy {name!r}; choose one of {', '.join(PROXY_NAMES)} (as proxy:<name>)")
        try:
            self.device = resolve_device(config.runtime.device)
        except ValueError as e:
            raise ConfigError(f"runtime.device: {e}") from None
        if data is not None and data.name != config.data.name:
            raise ConfigError(f"data.name is {config.data.name!r} but the dataset passed in is {data.name!r}; "
                              "pass the matching dataset or none")
        if batch_size < 2:
            raise ConfigError(f"proxy batch_size must be >= 2 (batch norm needs two examples), got {batch_size}")
        data = load_dataset(config.data) if data is None else data
        self.config, self.name = config, name
        self.seed = config.train.seed
        self.space = config.search_space(data.input_shape)
        self.num_classes = data.num_classes
        self.input_shape = data.input_shape
        self.stats = EvalStats()
        x, y = proxy_batch(data, batch_size, self.seed)
        self._x, self._y = x.to(self.device), y.to(self.device)
        self.raw_scores: dict[str, float] = {}  # arch text -> raw score (NaN when it raised)
        self._computed: dict[str, _Computed] = {}
        self._charged: set[str] = set()
        self.center, self.scale, self.calibration_seconds = self._calibrate(calibration_size)

    def __repr__(self) -> str:
        return f"ProxyEvaluator({self.config.name!r}, {self.name!r}, device={self.device})"

    def _calibrate(self, size: int) -> tuple[float, float, float]:
        """Mean and standard deviation of the transformed scores of a fixed sample (0 and 1 if
        fewer than two are finite); calibration is set-up, not charged to ``stats``."""
        start = time.perf_counter()
        rng = np.random.default_rng(self.seed)
        sample = {a.text(): a for a in (self.space.sample(rng) for _ in range(size))}
        t = np.array([self.transform(self._compute(a).score) for a in sample.values()])
        t = t[np.isfinite(t)]
        center = float(t.mean()) if len(t) >= 2 else 0.0
        scale = float(t.std()) if len(t) >= 2 else 1.0
        return center, scale if scale > 1e-12 else 1.0, time.perf_counter() - start

    def _compute(self, arch: Architecture) -> _Computed:
        text = arch.text()
        if text in self._computed:
            return self._computed[text]
        start = time.perf_counter()
        score, params, flops, reason = math.nan, 0, 0, ""
        try:
            with cpu_threads(self.device, self.config.runtime.threads), forked_rng(self.device):
                seed_torch(self.seed, self.device)
                model = self.space.build_model(arch, self.input_shape, self.num_classes)
                params = count_params(model)
                flops = self.space.count_flops(arch, self.input_shape, self.num_classes)
                if params > self.config.train.max_params:
                    reason = f"too_many_params: {params} > {self.config.train.max_params}"
                else:
                    score = proxy_score(self.name, model.to(self.device), self._x, self._y, flops)
                    if not math.isfinite(score):
                        reason = f"non_finite_score: {self.name} = {score}"
        except ProxyError as e:
            reason = f"proxy_undefined: {e}"
        except Exception as e:  # noqa: BLE001 - one bad architecture must not end a search
            reason = f"exception: {type(e).__name__}: {e}"
        done = _Computed(score, params, flops, time.perf_counter() - start, reason)
        self._computed[text] = done
        self.raw_scores[text] = score
        return done

    def transform(self, score: float) -> float:
        """The proxy's score on the additive scale it is standardised on (log for all but
        jacob_cov); a non-positive log-scaled score maps to -inf, i.e. the bottom."""
        if self.name not in _LOG_SCALED:
            return score
        if score > 0:
            return math.log(score)
        return math.nan if math.isnan(score) else -math.inf

    def normalise(self, score: float) -> float:
        """Raw score -> (0, 1), strictly increasing (see the class docstring)."""
        return logistic((self.transform(score) - self.center) / self.scale)

    def score(self, arch: Architecture | str) -> float:
        """The raw proxy score of ``arch`` (NaN or infinite when it failed). Not charged: the
        budget is counted by ``evaluate``, which charges the first evaluation in full even if
        the score was already computed here or during calibration.

        :raises ArchitectureError: ``arch`` is not in the search space.
        """
        return self._compute(self.space.validate(arch)).score

    def evaluate(self, arch: Architecture) -> EvalResult:
        """The proxy result of ``arch``; failures come back as failed results.

        :raises ArchitectureError: ``arch`` is not in the search space (a caller bug).
        """
        arch = self.space.validate(arch)
        text = arch.text()
        c = self._compute(arch)
        if c.reason:
            result = EvalResult.failure(text, c.reason, c.params, c.flops, train_seconds=c.seconds)
        else:
            result = EvalResult(arch=text, val_acc=self.normalise(c.score), params=c.params, flops=c.flops,
                                train_seconds=c.seconds, fidelity=0.0)
        self.stats.charge(result, cached=text in self._charged)
        self._charged.add(text)
        return result

    def evaluate_many(self, archs: Sequence[Architecture]) -> list[EvalResult]:
        """Results in order; every architecture is validated before any is scored."""
        archs = [self.space.validate(a) for a in archs]
        return [self.evaluate(a) for a in archs]

    def state(self) -> dict[str, Any]:
        """The budget and which architectures were charged (scores are recomputed, deterministically)."""
        return {**super().state(), "charged": sorted(self._charged)}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._charged = set(state["charged"])
