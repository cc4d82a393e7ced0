"""The ``evaluator:`` section of a preset and the one registry of evaluator kinds: what each kind
is, which ``evaluator:`` options it reads, and the function that builds it.

Config validation (the allowed kinds), the CLI's help text and ``make_evaluator`` all read this
table, so a kind is added in one place and the three can never list different kinds. It imports
nothing of nas-gym: the config validates against it without importing an evaluator, and the
factory is named by import path, imported only when an evaluator of that kind is made.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


@dataclass(frozen=True)
class EvaluatorKind:
    """One evaluator kind.

    :param name: what ``evaluator.kind`` says; a family (``variants`` not empty) is named
        ``<name>:<variant>``, e.g. ``proxy:synflow``.
    :param factory: ``module:function`` called as ``function(config, kind, *, data, cache,
        backend, run_seed)``, returning the evaluator.
    :param description: one line for help texts.
    :param options: the ``evaluator.*`` fields only this kind reads (besides ``kind`` and
        ``cache``, which every kind reads).
    :param variants: the members of a family.
    :param loads_data: it loads the preset's dataset (so a command checks the data before a
        run folder exists: ``nas_gym.preflight``).
    """

    name: str
    factory: str
    description: str
    options: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    loads_data: bool = False

    def label(self) -> str:
        """The name as a user writes it: ``train``, or ``proxy:<name>`` for a family."""
        return f"{self.name}:<name>" if self.variants else self.name

    def build(self) -> Callable[..., Any]:
        module, _, attr = self.factory.partition(":")
        return getattr(importlib.import_module(module), attr)


_FACTORIES = "nas_gym.evaluators.factories"
_WORKERS = ("backend", "workers", "ray_address", "gpus_per_eval", "max_retries", "threads_per_worker")

KINDS: dict[str, EvaluatorKind] = {k.name: k for k in (
    EvaluatorKind("train", f"{_FACTORIES}:make_training", "real training of each architecture",
                  (*_WORKERS, "high_epochs", "promote_top"), loads_data=True),
    EvaluatorKind("table", f"{_FACTORIES}:make_table",
                  "a shipped table of architectures trained for real, looked up in microseconds",
                  ("table_seed", "epochs", "table_file", "simulated_workers")),
    EvaluatorKind("surrogate", f"{_FACTORIES}:make_surrogate",
                  "a model fitted on a table predicts accuracy and training seconds", ("simulated_workers",)),
    EvaluatorKind("supernet", f"{_FACTORIES}:make_supernet",
                  "one weight-sharing network trained once per run, scoring each architecture as a path through it",
                  ("supernet_epochs", "supernet_val_samples", "supernet_batch_size")),
    EvaluatorKind("synthetic", f"{_FACTORIES}:make_synthetic",
                  "an instant made-up score with a known optimum, for testing agents and env logic"),
    EvaluatorKind("proxy", f"{_FACTORIES}:make_proxy", "a zero-cost proxy scores the untrained network",
                  variants=("synflow", "jacob_cov", "snip", "grad_norm", "params", "flops"), loads_data=True),
)}


def kind_labels() -> str:
    """``train, table, ..., proxy:<name>``: the allowed kinds, as error messages list them."""
    return ", ".join(k.label() for k in KINDS.values())


def lookup(kind: str) -> EvaluatorKind:
    """The registry entry of ``kind``. A family's variant is not checked here: the family's
    evaluator names its own variants (``proxy:<unknown>`` fails when it is made).

    :raises ValueError: one line listing the kinds.
    """
    family, sep, _ = kind.partition(":")
    entry = KINDS.get(family)
    if entry is None or bool(sep) != bool(entry.variants):
        raise ValueError(f"evaluator kind {kind!r} is not one of {kind_labels()}")
    return entry


def all_kinds() -> tuple[str, ...]:
    """Every kind an evaluator can be made of, a family's variants spelled out."""
    return tuple(name for k in KINDS.values() for name in ([f"{k.name}:{v}" for v in k.variants] or [k.name]))


def help_text() -> str:
    """The CLI's ``--evaluator`` help: every kind and what it is."""
    parts = [f"{k.label()}: {k.description}" + (f" ({', '.join(k.variants)})" if k.variants else "")
             for k in KINDS.values()]
    return "Evaluator kind. " + "; ".join(parts) + "."


class EvaluatorConfig(BaseModel):
    """The ``evaluator:`` section: which evaluator scores architectures, and where results are cached.

    :param kind: a kind of ``KINDS`` above (``train``, ``table``, ``surrogate``, ``supernet``,
        ``synthetic``, ``proxy:<name>``), which says what each is and which options it reads.
    :param cache: SQLite file; ``auto`` means ``~/.cache/nas-gym/evaluations.sqlite``, None disables.
    :param backend: where ``train`` runs the architectures of one batch: ``serial`` (in this
        process), ``process`` (a pool of spawned worker processes on this host) or ``ray``
        (Ray tasks, local or on a cluster). None of these fields is part of the cache key:
        every backend gives the same results.
    :param workers: worker processes (``process``), or CPUs of a local Ray instance (``ray``).
    :param ray_address: an existing Ray cluster to join; None starts a local one.
    :param gpus_per_eval: GPUs each worker holds (process or Ray; for ``serial``, the one process
        trains on ``runtime.device``); a fraction packs several workers on one GPU (``0.5``: two
        per GPU; see docs/gpu.md on NVIDIA MPS). None (default): 1 when ``runtime.device`` is
        ``cuda`` or ``auto`` and GPUs are visible, else 0 (CPU). A request for more GPUs than
        there are fails before any worker starts (``nas_gym.execution.gpus``).
    :param max_retries: how often an architecture is retried after its worker process died
        (killed, out of host memory) before it is recorded as ``worker_died``.
    :param threads_per_worker: torch CPU threads in each worker: on small networks two
        one-thread workers beat one two-thread worker.
    :param high_epochs: multi-fidelity mode (``train`` only): rewards still come from
        ``train.epochs``, and architectures whose reward is in the top ``promote_top`` of those
        seen so far are trained again for ``high_epochs``; the run's leaderboard ranks by the
        highest fidelity seen. None (default) turns it off.
    :param promote_top: the top fraction, in (0, 1], re-trained at ``high_epochs``.
    :param table_seed: what the ``table`` evaluator returns: ``draw`` (one of the table's seeds
        per architecture, drawn from the run's seed, as NAS-Bench-201's simulations do),
        ``mean`` (the mean over seeds: less noisy than any real search), or one seed.
    :param epochs: ``table`` only: answer with the validation accuracy after this many epochs
        and charge that many epochs of recorded time; needs a table with learning curves. None:
        the final epoch.
    :param supernet_epochs: ``supernet`` only: epochs (passes over the training split, one random
        path per batch) the shared weights train for, once per run, with the ``train`` recipe.
    :param supernet_val_samples: ``supernet`` only: validation samples (a fixed subset) each
        architecture is scored on; scoring time grows linearly with it, ties shrink with it.
    :param supernet_batch_size: ``supernet`` only: the batch its shared weights train with; 0
        (default) means ``train.batch_size``, lowered to what fits in memory
        (``nas_gym.oneshot.memory``).
    :param table_file: ``table`` only: a table file of your own (``scripts/build_table.py --out``),
        checked against the preset like a shipped one; None: the shipped table of the preset.
    :param simulated_workers: ``table`` and ``surrogate`` only: run the search as if this many
        workers trained in parallel, each evaluation holding one for its recorded seconds, on the
        simulated clock of ``nas_gym.runs.workers`` (agents with ask/tell only, when above 1).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # as every section (nas_gym.config)

    kind: str = "train"
    cache: str | None = "auto"
    backend: Literal["serial", "process", "ray"] = "serial"
    workers: int = Field(default=1, ge=1)
    ray_address: str | None = None
    gpus_per_eval: float | None = Field(default=None, ge=0.0, le=1.0)
    max_retries: int = Field(default=2, ge=0)
    threads_per_worker: int = Field(default=1, ge=1)
    high_epochs: int | None = Field(default=None, ge=1, le=10_000)
    promote_top: float = Field(default=0.1, gt=0.0, le=1.0)
    table_seed: int | Literal["draw", "mean"] = "draw"
    epochs: int | None = Field(default=None, ge=1, le=10_000)
    table_file: str | None = None
    supernet_epochs: int = Field(default=30, ge=1, le=10_000)
    supernet_val_samples: int = Field(default=256, ge=1)
    supernet_batch_size: int = Field(default=0, ge=0)
    simulated_workers: int = Field(default=1, ge=1, le=100_000)

    @field_validator("kind")
    @classmethod
    def _kind(cls, kind: str) -> str:
        lookup(kind)  # the registry of kinds: raises ValueError naming them
        return kind

    @model_validator(mode="after")
    def _table_options_for_tables(self) -> EvaluatorConfig:
        fixes = {"epochs": "remove evaluator.epochs (real training takes its budget from train.epochs)",
                 "table_file": "remove evaluator.table_file or set evaluator.kind=table"}
        for option, fix in fixes.items():
            if getattr(self, option) is not None and option not in lookup(self.kind).options:
                raise ValueError(f"{option} is read by the table evaluator only, not {self.kind!r}; {fix}")
        return self

    @model_validator(mode="after")
    def _simulated_workers_need_records(self) -> EvaluatorConfig:
        k = self.simulated_workers
        if k > 1 and "simulated_workers" not in lookup(self.kind).options:
            raise ValueError(f"simulated_workers={k} replays recorded training seconds, so it needs kind table or "
                             f"surrogate, not {self.kind!r}; set evaluator.simulated_workers=1 (real training runs "
                             "in parallel with evaluator.workers)")
        if k > 1 and self.workers > 1:
            raise ValueError(f"simulated_workers={k} and workers={self.workers} both ask for parallel workers; a "
                             "table or surrogate needs no real ones: set evaluator.workers=1")
        return self
