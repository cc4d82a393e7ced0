"""Evaluators turn architectures into EvalResults; ``make_evaluator`` picks one from a config.

Nothing here imports torch: ``nas_gym.evaluators.base`` is imported by the env and by agents,
and importing a subpackage runs this file first. The training evaluator (torch, data) is
imported only when it is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas_gym.config import Config, ConfigError
from nas_gym.evaluators.base import EvalResult, EvalStats, Evaluator
from nas_gym.execution.backends import parallel_backend
from nas_gym.storage.cache import CacheError, MemoryCache, ResultCache, open_cache

if TYPE_CHECKING:
    from nas_gym.data import Dataset
    from nas_gym.evaluators.training import Backend, TrainingEvaluator
    from nas_gym.storage.cache import Cache

AVAILABLE_KINDS = ("train", "table", "surrogate", "supernet", "synthetic", "proxy:synflow", "proxy:jacob_cov", "proxy:snip",
                   "proxy:grad_norm", "proxy:params", "proxy:flops")


def start_workers(config: Config) -> Backend | None:
    """The workers a search with ``config`` will train on, started now; None when it trains in
    this process (backend ``serial``) or trains nothing (evaluators other than ``train``).

    A worker takes seconds to import torch and load the data. A command that starts its workers
    first, before it imports torch and loads the data itself, finds them ready at its first
    evaluation. Hand the result to ``run_search(backend=...)`` (or ``make_evaluator``), whose
    evaluator closes it, and close it too if the search never starts (closing twice is fine).
    Imports no torch (Ray imports itself).

    :raises ConfigError: ``ray`` is asked for but not installed.
    """
    return parallel_backend(config) if config.evaluator.kind == "train" else None


def make_evaluator(config: Config, kind: str | None = None, *, data: Dataset | None = None,
                   cache: Cache | None = None, backend: Backend | None = None, run_seed: int = 0) -> Evaluator:
    """The evaluator ``kind`` names (default: ``config.evaluator.kind``).

    :param data: an already-loaded dataset for ``train`` and ``proxy:<name>`` (see ``TrainingEvaluator``).
    :param cache: a cache for ``train``; default: the one ``config.evaluator.cache`` names.
    :param backend: where ``train`` runs its batches (see ``nas_gym.evaluators.training.Backend``);
        default: the one ``config.evaluator.backend`` names. In the multi-fidelity mode a backend
        with ``with_config`` (process pool, Ray) serves both fidelities on the same workers.
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
        high_config = with_fidelity(single, epochs=config.evaluator.high_epochs)
        # In this process, both fidelities train on the one copy of the data the low one loaded;
        # with workers, both send their tasks to the one pool the low one started.
        shared = low.data if config.evaluator.backend == "serial" else data
        pool = low.backend if hasattr(low.backend, "with_config") else backend
        high = TrainingEvaluator(high_config, data=shared, cache=cache, backend=pool)
        return MultiFidelityEvaluator(low, high, promote_top=config.evaluator.promote_top)
    if kind == "synthetic":
        from nas_gym.evaluators.synthetic import SyntheticEvaluator

        return SyntheticEvaluator(config.search_space(), seed=config.train.seed, num_classes=config.num_classes)
    if kind.startswith("proxy:"):
        from nas_gym.evaluators.proxy import ProxyEvaluator

        return ProxyEvaluator(config, kind.removeprefix("proxy:"), data=data)
    if kind == "table":
        from nas_gym.evaluators.table import TableEvaluator

        return TableEvaluator(config, seed=config.evaluator.table_seed, run_seed=run_seed, epochs=config.evaluator.epochs)
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
    "parallel_backend",
    "start_workers",
]
