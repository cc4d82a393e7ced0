"""The surrogate benchmark: instant rewards predicted by a model fitted to real trainings.

Where a table cannot reach (the ``mnist1d`` layer chain holds 2.78 million architectures), a
model fitted to a few thousand real trainings stands in for the trainer, as NAS-Bench-301 does
for the DARTS space: an ensemble of gradient-boosted trees predicts the mean validation
accuracy and the training seconds of any architecture of the fitted space, and a noise model
measured on architectures trained under several seeds turns the mean into one plausible
training run's accuracy. The model ships in the package (``nas_gym/surrogates/<preset>.surrogate.npz``,
built by ``scripts/build_surrogate.py`` and ``scripts/fit_surrogate.py``; see ``docs/surrogate.md``).

What a search sees is what it would see with the training evaluator and a cache: the noise of
an architecture is drawn once per (run seed, architecture), from a generator seeded by both (as
the table draws one of its seeds per architecture), so the same seed gives the same rewards
whatever the query order, a repeat is a cache hit that costs nothing, and another run seed is
another set of training runs. The predicted seconds go to
``stats.train_seconds``, a simulated clock on which agents can be compared as with the table.

Nothing here imports torch or scikit-learn: a query is a few numpy operations.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.config import Config, ConfigError
from nas_gym.evaluators.base import EvalResult, EvalStats, EvaluatorBase, check_unstarted
from nas_gym.results import TRAINER_VERSION
from nas_gym.spaces.base import Architecture, ArchitectureError
from nas_gym.spaces.capabilities import CountsParams
from nas_gym.surrogates.data import SURROGATE_DIR
from nas_gym.surrogates.model import MODEL_SUFFIX, SurrogateModel, feature_fingerprint

_MODELS: dict[tuple[str, int, int], SurrogateModel] = {}  # (path, mtime_ns, size): loaded once per process


def load_model(path: str | os.PathLike[str]) -> SurrogateModel:
    """A model file, read once per process (a rewritten file is read again)."""
    path = Path(path).resolve()
    try:
        st = path.stat()
    except OSError as e:
        raise ConfigError(f"surrogate {path}: cannot be read ({e.strerror}); fit one with scripts/fit_surrogate.py") from None
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _MODELS:
        _MODELS[key] = SurrogateModel.load(path)
    return _MODELS[key]


def available_models() -> list[Path]:
    return sorted(SURROGATE_DIR.glob(f"*{MODEL_SUFFIX}"))


def recipe_mismatch(header: dict[str, Any], config: Config) -> str | None:
    """Why trainings recorded under ``header`` (a model's or its data's) are not what training
    under ``config`` gives (None if they are): another trainer version, space, dataset or recipe,
    ``train.seed`` aside (the model stands for training under any seed)."""
    built_by = header.get("trainer_version")
    if built_by != TRAINER_VERSION:
        return f"it was fitted to trainer version {built_by}, and this nas-gym trains with version {TRAINER_VERSION}"
    mine = config.model_dump(mode="json", include={"space", "data", "train"})
    for section in ("space", "data", "train"):
        theirs = header["config"].get(section, {})
        for k, v in mine[section].items():
            if k != "seed" and theirs.get(k) != v:
                return f"it was fitted with {section}.{k}={theirs.get(k)!r}, the config has {v!r}"
    return None


def mismatch(header: dict[str, Any], config: Config) -> str | None:
    """Why a model with ``header`` cannot stand in for training under ``config`` (None if it can):
    :func:`recipe_mismatch`, or a space whose ``features`` changed since the fit (the trees
    index features by position)."""
    problem = recipe_mismatch(header, config)
    if problem is None and header.get("feature_fingerprint") != feature_fingerprint(config.search_space()):
        problem = "the space's features changed since it was fitted"
    return problem


def find_model(config: Config) -> Path:
    """``<config.name>.surrogate.npz`` if shipped, else any shipped model that fits ``config``.

    :raises ConfigError: none fits, naming the models there are.
    """
    shipped = {p.name.removesuffix(MODEL_SUFFIX): p for p in available_models()}  # never a path built from the name
    if config.name in shipped:
        return shipped[config.name]
    for path in available_models():
        if mismatch(load_model(path).header, config) is None:
            return path
    names = ", ".join(p.name.removesuffix(MODEL_SUFFIX) for p in available_models()) or "none"
    raise ConfigError(f"no surrogate for preset {config.name!r} (surrogates: {names}); use evaluator 'train', or "
                      f"build one with scripts/build_surrogate.py --config {config.name} and scripts/fit_surrogate.py")


class SurrogateEvaluator(EvaluatorBase):
    """Predicts validation accuracy and training seconds; charges the predicted seconds.

    :param config: must describe the model's space, dataset and trainer recipe.
    :param path: the model file; default: the shipped model matching ``config`` (``find_model``).
    :param run_seed: the search's seed: it seeds the draw of each architecture's noise.
    :param mean: return the predicted mean accuracy instead of one seed's draw (reports, and
        rankings free of seed noise).
    :raises ConfigError: no model, or one fitted for another preset, trainer or feature layout.
    """

    def __init__(self, config: Config, run_seed: int = 0, path: str | os.PathLike[str] | None = None,
                 mean: bool = False) -> None:
        self.model = load_model(find_model(config) if path is None else path)
        problem = mismatch(self.model.header, config)
        if problem:
            name = Path(path).name if path is not None else config.name
            raise ConfigError(f"surrogate {name} does not fit config {config.name!r}: {problem}; refit it with "
                              "scripts/fit_surrogate.py or use evaluator 'train'")
        self.config = config
        self.space = config.search_space()
        if not isinstance(self.space, CountsParams):
            raise ConfigError(f"space {self.space.kind!r} cannot count parameters without torch; the surrogate "
                              "needs count_params on the space")
        self.num_classes = config.num_classes
        self.stats = EvalStats()
        self.run_seed = int(run_seed)
        self.mean = mean
        self._fidelity = float(config.train.epochs)
        self._shape = config.input_shape
        self._results: dict[str, EvalResult] = {}  # key -> result: an architecture is predicted once
        self._seen: set[str] = set()  # keys charged so far: a repeat is a cache hit

    def __repr__(self) -> str:
        return f"SurrogateEvaluator({self.config.name!r}, run_seed={self.run_seed}, mean={self.mean})"

    def _checked(self, arch: Architecture | str) -> Architecture:
        if isinstance(arch, str):
            arch = self.space.parse(arch)
        reason = self.space.violation(arch)
        if reason:
            raise ArchitectureError(f"architecture {arch.text() or '<empty>'} is outside the surrogate's space "
                                    f"({self.config.name}): {reason}")
        return arch

    def seed_run(self, seed: int) -> None:
        """A new run seed for the sampled noise (see :meth:`Evaluator.seed_run`); drops the draws
        made under the old one.

        :raises RuntimeError: architectures were already evaluated under another run seed.
        """
        check_unstarted(self.stats.evaluations, self.run_seed, seed)
        if int(seed) != self.run_seed and not self.mean:
            self._results.clear()
        self.run_seed = int(seed)

    def _noise_uniform(self, key: str) -> float:
        """One uniform number per (run seed, architecture), from a generator seeded by both."""
        return float(np.random.default_rng([self.run_seed, int(key[:15], 16)]).random())

    def _predict(self, archs: list[Architecture]) -> None:
        """Fill ``_results`` for ``archs`` (distinct, not yet predicted) in one batched walk."""
        mean_acc, seconds = self.model.predict(np.stack([self.space.features(a) for a in archs]))
        keys = [a.key() for a in archs]
        if not self.mean:
            mean_acc = self.model.draw(mean_acc, np.array([self._noise_uniform(k) for k in keys]))
        for arch, key, acc, secs in zip(archs, keys, mean_acc, seconds, strict=True):
            self._results[key] = EvalResult(
                arch=arch.text(), val_acc=float(acc),
                params=int(self.space.count_params(arch, self._shape, self.num_classes)),
                flops=int(self.space.count_flops(arch, self._shape, self.num_classes)),
                train_seconds=float(secs), train_loss=math.nan, fidelity=self._fidelity)

    def evaluate_many(self, archs: Sequence[Architecture | str]) -> list[EvalResult]:
        """Results in order, predicted together; every architecture is checked before any is
        charged. Each is charged its predicted seconds the first time only.

        :raises ArchitectureError: an architecture is outside the fitted space.
        """
        checked = [self._checked(a) for a in archs]
        keys = [a.key() for a in checked]
        todo = {k: a for k, a in zip(keys, checked, strict=True) if k not in self._results}
        if todo:
            self._predict(list(todo.values()))
        out = []
        for key in keys:
            result = self._results[key]
            self.stats.charge(result, cached=key in self._seen)
            self._seen.add(key)
            out.append(result)
        return out

    def state(self) -> dict[str, Any]:
        """The budget and which architectures were charged: a resumed search pays nothing for a repeat."""
        return {**super().state(), "seen": sorted(self._seen)}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._seen = set(state.get("seen", []))
