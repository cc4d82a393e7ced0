"""The evaluator that really trains: cache first, then ``nas_gym.train.evaluate_architecture``.

It is the one place where the budget is charged for real training, so agents that drive the
env and agents that call the evaluator directly pay the same way (``self.stats``). The dataset
is loaded and moved to the device once, at construction, because a search evaluates thousands
of architectures on the same tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

from nas_gym import train as _train
from nas_gym.config import Config, ConfigError
from nas_gym.data import Dataset, load_dataset
from nas_gym.evaluators.base import EvalResult, EvalStats
from nas_gym.evaluators.cache import Cache, open_cache
from nas_gym.space import Architecture


class TrainingEvaluator:
    """Scores architectures by training them with the config's recipe, caching every result.

    Failures (NaN loss, out of memory, too many parameters) are cached too, with their reason:
    training is seeded, so the same architecture under the same context would fail again, and
    retraining it would only charge the budget twice for the same answer.

    :param config: the preset; ``config.train`` and ``config.data`` make up the cache context,
        ``config.runtime`` says where training runs.
    :param data: an already-loaded dataset, to share one copy between evaluators; it must be
        the dataset ``config.data`` describes, or cached results would be filed under the wrong
        context. Default: loaded from ``config.data``.
    :param cache: where results are stored; default ``open_cache(config.evaluator.cache)``
        (a SQLite file, or memory when that is None).
    :raises ConfigError: the data does not match the config, or the device is unavailable.
    :raises CacheError: the cache file is not a usable nas-gym cache.
    """

    def __init__(self, config: Config, data: Dataset | None = None, cache: Cache | None = None) -> None:
        try:
            self.device = _train.resolve_device(config.runtime.device)
        except ValueError as e:
            raise ConfigError(f"runtime.device: {e}") from None
        if data is not None and data.name != config.data.name:
            raise ConfigError(f"data.name is {config.data.name!r} but the dataset passed in is {data.name!r}; "
                              "pass the matching dataset or none")
        self.config = config
        self.cache: Cache = open_cache(config.evaluator.cache) if cache is None else cache
        self.data = (load_dataset(config.data) if data is None else data).to(self.device)
        self.space = config.search_space(self.data.spatial_size)
        self.context = config.context_hash()
        self.num_classes = self.data.num_classes
        self.stats = EvalStats()

    def __repr__(self) -> str:
        return f"TrainingEvaluator({self.config.name!r}, device={self.device}, cache={self.cache!r})"

    def _compute(self, arch: Architecture) -> EvalResult:
        """Train ``arch``, store the result and charge for it.

        If another process stored a result for the same key meanwhile, that one is returned
        (the first stored result wins everywhere), but the training just done is still charged.
        """
        result = _train.evaluate_architecture(arch, self.data, self.config.train, self.config.runtime)
        self.stats.charge(result, cached=False)
        if not self.cache.put(arch, self.context, result):
            result = self.cache.get(arch, self.context) or result
        return result

    def evaluate(self, arch: Architecture) -> EvalResult:
        """The result of ``arch``, from the cache if stored, else by training it.

        :raises ArchitectureError: ``arch`` is not in the search space (a caller bug, not a
            training failure, so it is neither trained nor cached).
        """
        return self.evaluate_many([arch])[0]

    def evaluate_many(self, archs: Sequence[Architecture]) -> list[EvalResult]:
        """Results in the order of ``archs``; an architecture repeated in the call is trained
        once, and its repeats are charged as cache hits.

        Every architecture is validated before any training starts, so a bad one fails the call
        at once rather than after minutes of work.
        """
        archs = [self.space.validate(a) for a in archs]
        stored = self.cache.get_many(archs, self.context)
        done: dict[str, EvalResult] = {}
        out: list[EvalResult] = []
        for arch, hit in zip(archs, stored, strict=True):
            key = arch.key()
            if key in done:
                result = done[key]
                self.stats.charge(result, cached=True)
            elif hit is not None:
                result = done[key] = hit
                self.stats.charge(result, cached=True)
            else:
                result = done[key] = self._compute(arch)
            out.append(result)
        return out
