"""Evaluators turn architectures into EvalResults; ``make_evaluator`` picks one from a config.

Nothing here imports torch: ``nas_gym.evaluators.base`` is imported by the env and by agents,
and importing a subpackage runs this file first. The training evaluator (torch, data) is
imported only when it is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas_gym.config import Config, ConfigError
from nas_gym.evaluator_kinds import all_kinds, lookup
from nas_gym.evaluators.base import EvalResult, EvalStats, Evaluator
from nas_gym.execution.backends import parallel_backend
from nas_gym.storage.cache import CacheError, MemoryCache, ResultCache, open_cache

if TYPE_CHECKING:
    from nas_gym.data import Dataset
    from nas_gym.evaluators.training import Backend, TrainingEvaluator
    from nas_gym.storage.cache import Cache

AVAILABLE_KINDS = all_kinds()  # from the one registry of kinds (``nas_gym.evaluator_kinds``)


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
    return parallel_backend(config) if "backend" in lookup(config.evaluator.kind).options else None


def make_evaluator(config: Config, kind: str | None = None, *, data: Dataset | None = None,
                   cache: Cache | None = None, backend: Backend | None = None, run_seed: int = 0) -> Evaluator:
    """The evaluator ``kind`` names (default: ``config.evaluator.kind``), built by the factory the
    registry of kinds names (``nas_gym.evaluator_kinds``).

    :param data: an already-loaded dataset for ``train`` and ``proxy:<name>`` (see ``TrainingEvaluator``).
    :param cache: a cache for ``train``; default: the one ``config.evaluator.cache`` names.
    :param backend: where ``train`` runs its batches (see ``nas_gym.evaluators.training.Backend``);
        default: the one ``config.evaluator.backend`` names. In the multi-fidelity mode the low
        fidelity's backend serves both (``Backend.with_config``: a pool's same workers).
    :param run_seed: the search's seed, for evaluators that draw noise per run (the table's
        per-architecture seed, the surrogate's sampled accuracy).
    :raises ConfigError: the kind is unknown or not available yet.
    """
    kind = config.evaluator.kind if kind is None else kind
    try:
        entry = lookup(kind)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return entry.build()(config, kind, data=data, cache=cache, backend=backend, run_seed=run_seed)


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
