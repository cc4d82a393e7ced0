"""The tabular benchmark: every architecture of a small space, trained once per seed, looked up.

Like NAS-Bench-201, a table turns a search that would train for hours into one that runs in
seconds, while still charging each agent the training time it would have spent: the recorded
seconds go to ``stats.train_seconds`` as a simulated clock, so agents can be compared at equal
simulated GPU time. The table is built by ``scripts/build_table.py`` with the real trainer and
ships in the package (``nas_gym/tables/<preset>.jsonl.gz``).

File format (gzip'd JSON lines, so it diffs and streams and needs no extra dependency):
line 1 is a header (preset, full config dump, seeds, the trainer context hash per seed,
space size, library versions, date); each further line is one architecture::

    {"arch": "conv3-16|maxpool", "params": 1234, "flops": 5678, "status": ["ok", "ok"],
     "reason": ["", ""], "val_acc": [0.61, 0.6], "test_acc": [0.6, 0.59],
     "train_loss": [1.1, 1.2], "train_seconds": [0.41, 0.43]}

with one list entry per seed, in the header's seed order. A table built with learning curves
(``scripts/build_table.py --curves``) also has ``"curves": {"val_acc": [[...], ...], "test_acc":
..., "train_loss": ..., "train_seconds": ...}``: per seed, one value per epoch, the seconds
cumulative, so that epoch ``e`` of a curve is the network after ``e`` epochs of the table's run
(under the schedule of the whole run, as NAS-Bench-201's curves are) and what those epochs cost.
Test accuracy is in the file for final reports (``test_acc``), never in ``val_acc``: search must not peek at the test set.

Nothing here imports torch: looking an architecture up must stay microseconds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.benchmarks.table_file import (  # noqa: F401  (the file format, re-exported)
    FORMAT,
    FORMAT_VERSION,
    SUFFIX,
    TABLE_DIR,
    SeedChoice,
    Table,
    _mean,
    built_config,
    load_table,
    make_row,
    read_header,
    write_table,
)
from nas_gym.config import Config, ConfigError
from nas_gym.evaluators.base import EvalResult, EvalStats, EvaluatorBase, check_unstarted
from nas_gym.results import TRAINER_VERSION
from nas_gym.spaces.base import Architecture, ArchitectureError


# -- matching a config to a table ------------------------------------------------------------
def available_tables() -> list[Path]:
    return sorted(TABLE_DIR.glob(f"*{SUFFIX}"))


def _space_fields(config: Config) -> tuple:
    return (config.space, config.input_shape)


def _space_text(config: Config) -> str:
    fields = config.space.model_dump(exclude={"kind"})
    return f"{config.space.kind}: " + "; ".join(f"{k}={v}" for k, v in fields.items())


def mismatch(header: dict[str, Any], config: Config, seeds: Sequence[int] | None = None) -> str | None:
    """Why ``config`` cannot be scored from a table with ``header`` (None if it can).

    The space must be the same, and for each table seed the config's trainer context (with
    that seed) must hash to the header's: then every row is exactly what training this
    config would give. ``config.train.seed`` itself is ignored: the table's seeds stand in.
    """
    built = built_config(header)
    # The trainer version is recorded apart from the recipe hash, so a table outlives renames of
    # code that leave results alone; a header without it predates it and was built by version 1.
    built_by = header.get("trainer_version", 1)
    if built_by != TRAINER_VERSION:
        return (f"it was built by trainer version {built_by}, and this nas-gym trains with version "
                f"{TRAINER_VERSION} (its results changed)")
    if _space_fields(built) != _space_fields(config):
        return (f"its space ({_space_text(built)}; {built.data.name}) differs from the config's "
                f"({_space_text(config)}; {config.data.name})")
    for s in header["seeds"] if seeds is None else seeds:
        with_seed = config.model_copy(update={"train": config.train.model_copy(update={"seed": s})})
        if with_seed.context_hash() != header["context_hashes"][str(s)]:
            for section in ("data", "train"):
                mine = getattr(config, section).model_dump(exclude={"seed", "root", "download"})
                theirs = getattr(built, section).model_dump(exclude={"seed", "root", "download"})
                diff = [k for k in mine if mine[k] != theirs.get(k)]
                if diff:
                    k = diff[0]
                    return f"it was built with {section}.{k}={theirs.get(k)!r}, the config has {mine[k]!r}"
            return f"the trainer context hash for seed {s} differs (nas-gym version change?)"
    return None


def find_table(config: Config) -> Path:
    """The shipped table for ``config``: ``<config.name>.jsonl.gz`` if present, else any table
    whose header matches (so a copy of a preset under another name still finds its table).

    :raises ConfigError: no shipped table matches, naming the tables there are.
    """
    shipped = {p.name.removesuffix(SUFFIX): p for p in available_tables()}  # never a path built from the name
    if config.name in shipped:
        return shipped[config.name]
    for path in available_tables():
        if mismatch(read_header(path), config) is None:
            return path
    names = ", ".join(p.name.removesuffix(SUFFIX) for p in available_tables()) or "none"
    raise ConfigError(f"no table for preset {config.name!r} (tables: {names}); "
                      f"build one with scripts/build_table.py --config {config.name}")


# -- the evaluator --------------------------------------------------------------------------
class TableEvaluator(EvaluatorBase):
    """Looks architectures up in a table built by real training; charges a simulated clock.

    ``stats.train_seconds`` grows by the recorded training seconds of each architecture the
    first time this evaluator returns it; a repeat is a cache hit and costs nothing, exactly
    as with the training evaluator and its cache. The clock is that of the machine that built
    the table (see the header), so compare agents on it, not on wall time.

    :param config: must describe the table's space and trainer recipe (``train.seed`` aside).
    :param seed: ``"draw"`` (default): each architecture's reward is one training seed of the
        table, drawn per architecture from a generator seeded by ``run_seed`` and the
        architecture's key, as NAS-Bench-201's search simulations draw one seed per query: the
        noise a real search sees, the same for a repeat (as a cache would give), reproducible
        and independent of query order. ``"mean"``: the mean over the table's seeds (less noisy
        than any real search: name it when you report it). Or one of the table's seeds.
    :param path: the table file; default: the shipped table matching ``config`` (``find_table``).
    :param run_seed: the search's seed, for ``"draw"``.
    :param epochs: answer with the validation accuracy after this many epochs and charge that
        many epochs of recorded time (tables with learning curves only); None: the final epoch.
    :raises ConfigError: no table, or one built for another space, dataset or trainer recipe.
    """

    def __init__(self, config: Config, seed: SeedChoice = "draw", path: str | os.PathLike[str] | None = None,
                 run_seed: int = 0, epochs: int | None = None) -> None:
        self.table = load_table(find_table(config) if path is None else path)
        name = self.table.path.name
        self.max_epochs = self.table.max_epochs or int(built_config(self.table.header).train.epochs)
        if epochs is not None:
            if self.table.max_epochs is None:
                raise ConfigError(f"evaluator.epochs: table {name} records final results only, no learning curves; "
                                  "remove evaluator.epochs or use a table built with --curves")
            if not 1 <= epochs <= self.max_epochs:
                raise ConfigError(f"evaluator.epochs={epochs}: table {name} has curves of 1..{self.max_epochs} epochs; "
                                  f"choose one in that range")
        if seed not in ("mean", "draw") and (isinstance(seed, bool) or not isinstance(seed, int)
                                             or seed not in self.table.seeds):
            raise ConfigError(f"table {name}: seed {seed!r} is not one of its seeds {list(self.table.seeds)}, "
                              "'draw' or 'mean'")
        problem = mismatch(self.table.header, config, None if seed in ("mean", "draw") else [seed])
        if problem:
            raise ConfigError(f"table {name} does not fit config {config.name!r}: {problem}; use preset "
                              f"{self.table.header['preset']} unchanged or build a table with scripts/build_table.py")
        self.config, self.seed = config, seed
        self.space = config.search_space()
        self.num_classes = config.num_classes
        self.stats = EvalStats()
        self.run_seed = int(run_seed)
        self.epochs = epochs
        self._results = self.table.results("mean" if seed == "draw" else seed, epochs)
        # canonical key -> epochs paid for: a repeat, or a query at fewer epochs, is not charged again
        self._paid: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"TableEvaluator({self.table.path.name!r}, seed={self.seed!r}, run_seed={self.run_seed})"

    def seed_run(self, seed: int) -> None:
        """A new run seed for ``"draw"`` (see :meth:`Evaluator.seed_run`); refused (RuntimeError)
        once architectures were drawn under another one (``check_unstarted``)."""
        check_unstarted(self.stats.evaluations, self.run_seed, seed)
        self.run_seed = int(seed)

    def drawn_seed(self, arch: Architecture) -> int:
        """The table seed whose result ``arch`` gets in ``"draw"`` mode."""
        rng = np.random.default_rng([self.run_seed, int(arch.key()[:15], 16)])
        return self.table.seeds[int(rng.integers(len(self.table.seeds)))]

    def _outside(self, arch: Architecture) -> ArchitectureError:
        reason = self.space.violation(arch) or "missing from the table"
        return ArchitectureError(f"architecture {arch.text() or '<empty>'} is not in the table's search space "
                                 f"({self.table.path.name}): {reason}")

    def _lookup(self, arch: Architecture | str) -> tuple[Architecture, EvalResult]:
        if isinstance(arch, str):
            arch = self.space.parse(arch)
        result = self._results.get(arch.key())
        if result is None:
            raise self._outside(arch)
        return arch, result

    def evaluate(self, arch: Architecture | str) -> EvalResult:
        """The recorded result of ``arch`` (validation accuracy only) at the evaluator's epochs.

        :raises ArchitectureError: ``arch`` is not in the table's space.
        """
        return self.evaluate_at(arch, self.epochs)

    def evaluate_at(self, arch: Architecture | str, epochs: int | None) -> EvalResult:
        """The result of ``arch`` after ``epochs`` epochs (None: the final one), for agents that
        choose the fidelity (successive halving): it pays only for epochs not paid for yet, as if
        training continued from where the last query of ``arch`` stopped.

        :raises ArchitectureError: ``arch`` is not in the table's space.
        :raises ConfigError: ``epochs`` out of the table's curves.
        """
        arch, _ = self._lookup(arch)
        if epochs is not None and (self.table.max_epochs is None or not 1 <= epochs <= self.max_epochs):
            raise ConfigError(f"epochs={epochs}: table {self.table.path.name} answers 1..{self.max_epochs} epochs "
                              f"only{'' if self.table.max_epochs else ' (it has no learning curves)'}")
        key = arch.key()
        seed = self.drawn_seed(arch) if self.seed == "draw" else self.seed
        result = self.table.results(seed, epochs)[key]
        want, paid = epochs or self.max_epochs, self._paid.get(key, 0)
        if want <= paid:
            self.stats.charge(result, cached=True)
            return result
        before = self.table.results(seed, paid)[key].train_seconds if paid and self.table.max_epochs else 0.0
        self._paid[key] = want
        self.stats.charge(replace(result, train_seconds=max(0.0, result.train_seconds - before)), cached=False)
        return result

    def evaluate_many(self, archs: Sequence[Architecture | str]) -> list[EvalResult]:
        """Results in order; every architecture is checked before any is charged."""
        looked_up = [self._lookup(a)[0] for a in archs]
        return [self.evaluate(a) for a in looked_up]

    def state(self) -> dict[str, Any]:
        """The budget and what was paid for: a resumed search pays nothing for a repeat."""
        return {**super().state(), "paid": dict(sorted(self._paid.items()))}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        # runs saved before per-epoch charging list the keys they paid for in full
        self._paid = dict(state["paid"]) if "paid" in state else dict.fromkeys(state["seen"], self.max_epochs)

    # -- for reports: not charged ------------------------------------------------------------
    def optimum(self) -> tuple[Architecture, float]:
        """The architecture with the best validation accuracy as this evaluator scores it (the
        mean over seeds for ``"draw"`` and ``"mean"``), first in table order on ties: the target
        for regret."""
        key, result = max(self._results.items(), key=lambda kv: (kv[1].ok, kv[1].val_acc))
        return self.table.archs[self.table.index[key]], result.val_acc

    def all_results(self, with_test: bool = False) -> list[EvalResult]:
        """Every architecture's result in table order; ``with_test`` fills ``test_acc`` (reports only)."""
        if not with_test:
            return list(self._results.values())
        return [_with_test(r, self.test_acc(a)) for a, r in zip(self.table.archs, self._results.values(), strict=True)]

    def test_acc(self, arch: Architecture | str) -> float | None:
        """Test accuracy of ``arch`` (the mean over seeds, or this evaluator's fixed seed): for
        reports on the architecture a search returns, never for search; None if it failed.

        :raises ArchitectureError: ``arch`` is not in the table's space.
        """
        arch, result = self._lookup(arch)
        if not result.ok:
            return None
        row = self.table.rows[self.table.index[arch.key()]]
        seeds = self.table.seeds
        idx = range(len(seeds)) if self.seed in ("mean", "draw") else [seeds.index(self.seed)]
        return _mean([row["test_acc"][i] for i in idx])


def _with_test(result: EvalResult, test_acc: float | None) -> EvalResult:
    return replace(result, test_acc=test_acc)
