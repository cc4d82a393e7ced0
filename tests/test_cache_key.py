"""The persistent cache follows the code: its key holds the trainer version and the space's
identity, a crash of our code or of a worker is never stored, and the shipped table (built
before tables recorded a trainer version) still matches its preset."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace

import pytest

from nas_gym.config import load_config
from nas_gym.evaluators.base import EvalResult
from nas_gym.evaluators.table import TableEvaluator, find_table, mismatch, read_header
from nas_gym.evaluators.training import TrainingEvaluator
from nas_gym.execution.backends import BackendBase
from nas_gym.spaces.layer_chain.chain import Chain
from nas_gym.storage import cache as cache_mod
from nas_gym.storage.cache import TRAINER_VERSION, ResultCache, result_context

A = Chain.parse("conv3-16|maxpool|conv3-32")
B = Chain.parse("conv5-16")


class CannedBackend(BackendBase):
    """A training backend that answers ``answer(arch)`` at once and records what it was asked."""

    def __init__(self, answer: Callable[[Chain], EvalResult] | None = None) -> None:
        self.answer = answer or (lambda a: EvalResult(arch=a.text(), val_acc=0.5, params=1, flops=1, train_seconds=1.0))
        self.calls: list[str] = []

    def run(self, archs: Sequence[Chain], on_result=None) -> list[EvalResult]:
        self.calls += [a.text() for a in archs]
        return [self.answer(a) for a in archs]

    def close(self) -> None:
        pass


def evaluator(tmp_path, backend: CannedBackend) -> TrainingEvaluator:
    cfg = load_config("mnist1d-tiny", {"evaluator.cache": str(tmp_path / "c.sqlite"), "runtime.device": "cpu"})
    return TrainingEvaluator(cfg, backend=backend)


def test_a_trainer_version_bump_trains_again(tmp_path, monkeypatch):
    evaluator(tmp_path, CannedBackend()).evaluate(A)
    same_code = CannedBackend()
    assert evaluator(tmp_path, same_code).evaluate(A).ok and same_code.calls == []  # a hit
    monkeypatch.setattr(cache_mod, "TRAINER_VERSION", TRAINER_VERSION + 1)
    new_code = CannedBackend()
    evaluator(tmp_path, new_code).evaluate(A)
    assert new_code.calls == [A.text()]


def test_results_stored_under_the_recipe_alone_are_not_reused(tmp_path):
    """A cache written when the key was only the recipe hash (``Config.context_hash``) says
    nothing about which code produced it."""
    backend = CannedBackend()
    ev = evaluator(tmp_path, backend)
    ResultCache(tmp_path / "c.sqlite").put(A, ev.config.context_hash(), EvalResult(arch=A.text(), val_acc=0.9, params=1,
                                                                                   flops=1))
    assert ev.evaluate(A).val_acc == 0.5 and backend.calls == [A.text()]


def test_the_context_holds_the_recipe_the_space_and_the_version(monkeypatch):
    cfg = load_config("mnist1d-tiny")
    space = cfg.search_space()
    base = result_context(cfg, space)
    assert base == result_context(load_config("mnist1d-tiny"), cfg.search_space())  # stable across processes' objects
    assert result_context(load_config("mnist1d-tiny", {"train.epochs": 3}), space) != base
    wider = SimpleNamespace(kind=space.kind, identity=lambda: {"width": 2})
    other = SimpleNamespace(kind="cell", identity=space.identity)
    assert len({base, result_context(cfg, wider), result_context(cfg, other)}) == 3
    monkeypatch.setattr(cache_mod, "TRAINER_VERSION", TRAINER_VERSION + 1)
    assert result_context(cfg, space) != base


@pytest.mark.parametrize("reason", ["exception: RuntimeError: a bug of ours", "worker_died: SIGKILL (2 attempts)"],
                         ids=["exception", "worker-died"])
def test_a_crash_is_charged_but_not_cached(tmp_path, reason):
    backend = CannedBackend(lambda a: EvalResult.failure(a.text(), reason, train_seconds=1.0))
    ev = evaluator(tmp_path, backend)
    assert ev.evaluate(A).reason == reason and ev.evaluate(A).reason == reason
    assert backend.calls == [A.text(), A.text()]  # not a property of the architecture: asked again
    assert (ev.stats.trained, ev.stats.cache_hits, ev.stats.failures) == (2, 0, 2)
    assert len(ev.cache) == 0


def test_a_failure_of_the_architecture_is_cached(tmp_path):
    backend = CannedBackend(lambda a: EvalResult.failure(a.text(), "nan_loss", train_seconds=1.0))
    ev = evaluator(tmp_path, backend)
    ev.evaluate_many([A, B])
    ev.evaluate_many([A, B])
    assert backend.calls == [A.text(), B.text()] and len(ev.cache) == 2
    assert (ev.stats.trained, ev.stats.cache_hits) == (2, 2)


def test_the_shipped_table_matches_and_a_newer_trainer_refuses_it():
    """The shipped table was built before headers recorded a trainer version, by the code of
    version 1, and keeps matching; a table built by other trainer code does not."""
    cfg = load_config("mnist1d-tiny")
    header = read_header(find_table(cfg))
    assert mismatch(header, cfg) is None and TableEvaluator(cfg).stats.evaluations == 0
    problem = mismatch({**header, "trainer_version": TRAINER_VERSION + 1}, cfg)
    assert problem == (f"it was built by trainer version {TRAINER_VERSION + 1}, and this nas-gym trains with version "
                       f"{TRAINER_VERSION} (its results changed)")
