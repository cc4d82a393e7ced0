"""Evaluators turn architectures into EvalResults; ``make_evaluator`` picks one from a config.

Nothing here imports torch: ``nas_gym.evaluators.base`` is imported by the env and by agents,
and importing a subpackage runs this file first. The training evaluator (torch, data) is
imported only when it is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas_gym.config import Config, ConfigError
from nas_gym.evaluators.base import EvalResult, EvalStats, Evaluator
from nas_gym.evaluators.cache import CacheError, MemoryCache, ResultCache, open_cache

if TYPE_CHECKING:
    from nas_gym.data import Dataset
    from nas_gym.evaluators.cache import Cache
    from nas_gym.evaluators.training import Backend, TrainingEvaluator

AVAILABLE_KINDS = ("train", "table", "surrogate", "supernet", "synthetic", "proxy:synflow", "proxy:jacob_cov", "proxy:snip",
                   "proxy:grad_norm", "proxy:params", "proxy:flops")


def make_evaluator(config: Config, kind: str | None = None, *, data: Dataset | None = None,
                   cache: Cache | None = None, backend: Backend | None = None, run_seed: int = 0) -> Evaluator:
    """The evaluator ``kind`` names (default: ``config.evaluator.kind``).

    :param data: an already-loaded dataset for ``train`` and ``proxy:<name>`` (see ``TrainingEvaluator``).
    :param cache: a cache for ``train``; default: the one ``config.evaluator.cache`` names.
    :param backend: where ``train`` runs its batches (see ``nas_gym.evaluators.training.Backend``);
        default: the one ``config.evaluator.backend`` names.
    :param run_seed: the search's seed, for evaluators that draw noise per run (the table's
        per-architecture seed, the surrogate's sampled accuracy).
    :raises ConfigError: the kind is unknown or not available yet.
    """
    kind = config.evaluator.kind if kind is None else kind
    if kind == "train":
        from nas_gym.evaluators.training import TrainingEvaluator

        low = TrainingEvaluator(config, data=data, cache=cache, backend=backend)
        if config.evaluator.high_epochs is None:
            return low
        from nas_gym.config import load_config
        from nas_gym.evaluators.multi_fidelity import MultiFidelityEvaluator, with_fidelity

        # Same cache file, other context hash: each fidelity is cached (and resumed) separately.
        single = load_config(config, {"evaluator.high_epochs": None})
        # In this process, both fidelities train on the one copy of the data the low one loaded.
        shared = low.data if config.evaluator.backend == "serial" else data
        high = TrainingEvaluator(with_fidelity(single, epochs=config.evaluator.high_epochs), data=shared, cache=cache,
                                 backend=backend)
        return MultiFidelityEvaluator(low, high, promote_top=config.evaluator.promote_top)
    if kind == "synthetic":
        from nas_gym.evaluators.synthetic import SyntheticEvaluator

        return SyntheticEvaluator(config.search_space(), seed=config.train.seed, num_classes=config.num_classes)
    if kind.startswith("proxy:"):
        from nas_gym.evaluators.proxy import ProxyEvaluator

        return ProxyEvaluator(config, kind.removeprefix("proxy:"), data=data)
    if kind == "table":
        from nas_gym.evaluators.table import TableEvaluator

        return TableEvaluator(config, seed=config.evaluator.table_seed, run_seed=run_seed)
    if kind == "surrogate":
        from nas_gym.evaluators.surrogate import SurrogateEvaluator

        return SurrogateEvaluator(config, run_seed=run_seed)
    if kind == "supernet":
        from nas_gym.evaluators.supernet import SupernetEvaluator

        return SupernetEvaluator(config, data=data)
    raise ConfigError(f"evaluator kind {kind!r} is not one of train, table, surrogate, supernet, synthetic, proxy:<name>")


def __getattr__(name: str) -> Any:
    if name == "TrainingEvaluator":  # lazy: it imports torch
        from nas_gym.evaluators.training import TrainingEvaluator

        return TrainingEvaluator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AVAILABLE_KINDS",
    "CacheError",
    "EvalResult",
    "EvalStats",
    "Evaluator",
    "MemoryCache",
    "ResultCache",
    "TrainingEvaluator",
    "make_evaluator",
    "open_cache",
]
