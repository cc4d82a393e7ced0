"""Where results are kept: the cache a config names (:func:`open_cache`: the SQLite file of
``sqlite_cache`` or, without a file, this process's memory) and the context half of every key
(:func:`result_context`).

The key's context lives here, apart from the file, because it is what decides whether a stored
result may be reused: the same rule serves the file and the memory cache alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nas_gym.results import TRAINER_VERSION, EvalResult
from nas_gym.storage.sqlite_cache import (
    APPLICATION_ID,
    DEFAULT_PATH,
    ENV_VAR,
    SCHEMA_VERSION,
    CacheEntry,
    CacheError,
    ResultCache,
    resolve_path,
)

if TYPE_CHECKING:
    from nas_gym.config import Config
    from nas_gym.spaces.base import Architecture, SearchSpace

__all__ = ["APPLICATION_ID", "DEFAULT_PATH", "ENV_VAR", "SCHEMA_VERSION", "TRAINER_VERSION", "Cache", "CacheEntry",
           "CacheError", "MemoryCache", "ResultCache", "open_cache", "resolve_path", "result_context"]


def result_context(config: Config, space: SearchSpace, numerics: Mapping[str, Any] | None = None) -> str:
    """The context of a result, the second half of its cache key: everything besides the
    architecture's key that decides it. That is the config's training recipe
    (``Config.context_hash``: data, split, trainer, seed), the space (its kind and
    ``identity()``: two spaces' architectures may share a text, not a network), the code that
    trains and builds (:data:`TRAINER_VERSION`) and, off the CPU, the device type and the
    settings that change its numbers (``numerics``: see ``nas_gym.training.numerics.numerics_identity``).
    CPU results have no ``numerics``, so their keys are what they were before it existed."""
    payload = {"recipe": config.context_hash(), "space": space.kind, "identity": space.identity(),
               "trainer_version": TRAINER_VERSION}
    if numerics:
        payload["numerics"] = dict(numerics)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


class MemoryCache:
    """The same interface as ``ResultCache``, kept in this process's memory.

    Used when ``evaluator.cache`` is None: nothing is written to disk, but an architecture seen
    twice by one evaluator is still trained once, so the budget is charged the same way with or
    without a file.
    """

    path = None

    def __init__(self) -> None:
        self._results: dict[tuple[str, str], tuple[str, EvalResult, float]] = {}

    def get(self, arch: Architecture, context: str) -> EvalResult | None:
        entry = self._results.get((arch.key(), context))
        return entry[1] if entry else None

    def get_many(self, archs: Sequence[Architecture], context: str) -> list[EvalResult | None]:
        return [self.get(a, context) for a in archs]

    def put(self, arch: Architecture, context: str, result: EvalResult) -> bool:
        key = (arch.key(), context)
        if key in self._results or not result.cacheable:
            return False
        self._results[key] = (arch.text(), result, time.time())
        return True

    def put_many(self, items: Iterable[tuple[Architecture, EvalResult]], context: str) -> int:
        return sum(self.put(a, context, r) for a, r in items)

    def __len__(self) -> int:
        return len(self._results)

    def all(self, context: str | None = None) -> Iterator[CacheEntry]:
        for (_, ctx), (arch, result, created) in list(self._results.items()):
            if context is None or ctx == context:
                yield CacheEntry(arch, ctx, result, created)

    def close(self) -> None:
        pass


Cache = ResultCache | MemoryCache


def open_cache(spec: str | os.PathLike[str] | None, timeout: float = 30.0) -> Cache:
    """The cache a config's ``evaluator.cache`` names: a file (``"auto"`` or a path), or memory for None."""
    path = resolve_path(spec)
    return MemoryCache() if path is None else ResultCache(path, timeout)
