"""Every evaluator implements the whole Evaluator protocol, and one stopped and rebuilt from its
``state()`` (through JSON, as a checkpoint stores it) charges the rest of a search exactly as
one that never stopped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nas_gym.config import load_config
from nas_gym.evaluators.base import EvalResult, Evaluator
from nas_gym.evaluators.multi_fidelity import MultiFidelityEvaluator
from nas_gym.evaluators.prefetch import PrefetchEvaluator
from nas_gym.evaluators.proxy import ProxyEvaluator
from nas_gym.evaluators.synthetic import SyntheticEvaluator
from nas_gym.evaluators.table import TableEvaluator
from nas_gym.evaluators.training import TrainingEvaluator
from nas_gym.execution.backends import BackendBase

CFG = load_config("mnist1d-tiny", {"runtime.device": "cpu"})


class InstantBackend(BackendBase):
    """Stands in for training: a score from the architecture's text, one second charged."""

    def run(self, archs, on_result=None) -> list[EvalResult]:
        return [EvalResult(arch=a.text(), val_acc=len(a.text()) / 100, params=1, flops=1, train_seconds=1.0)
                for a in archs]

    def close(self) -> None:
        pass


def training(folder: Path) -> Evaluator:
    """Each folder its own cache file, as each search its own (or a shared one it resumes with)."""
    return TrainingEvaluator(load_config(CFG, {"evaluator.cache": str(folder / "c.sqlite")}), backend=InstantBackend())


MAKERS: dict[str, Callable[[Path], Evaluator]] = {
    "synthetic": lambda folder: SyntheticEvaluator(CFG.search_space(), seed=1),
    "table": lambda folder: TableEvaluator(CFG),
    "training": training,
    "proxy": lambda folder: ProxyEvaluator(CFG, "params", calibration_size=8),
    "multi-fidelity": lambda folder: MultiFidelityEvaluator(training(folder / "low"), TableEvaluator(CFG), 0.5),
    "prefetch": lambda folder: PrefetchEvaluator(TableEvaluator(CFG), batch_size=2),
}


def charges(ev: Evaluator) -> tuple:
    """The budget charged; seconds only where they are not measured on the clock (the proxy's are)."""
    s = ev.stats
    return s.evaluations, s.trained, s.cache_hits, s.failures, None if isinstance(ev, ProxyEvaluator) else s.train_seconds


@pytest.mark.parametrize("name", MAKERS)
def test_an_evaluator_rebuilt_from_its_state_continues_as_if_never_stopped(tmp_path, name):
    make = MAKERS[name]
    rng = np.random.default_rng(0)
    archs = [CFG.search_space().sample(rng) for _ in range(6)]
    before, after = archs[:4] + archs[:1], archs[2:] + archs[:2]  # repeats within and across the stop

    straight = make(tmp_path / "straight")
    assert isinstance(straight, Evaluator) and straight.space == CFG.search_space() and straight.batch_size >= 1
    straight.evaluate_many(before)
    stopped = make(tmp_path / "stopped")
    stopped.evaluate_many(before)
    resumed = make(tmp_path / "stopped")
    resumed.load_state(json.loads(json.dumps(stopped.state())))
    assert resumed.stats == stopped.stats and charges(resumed) == charges(straight)
    assert [r.val_acc for r in resumed.evaluate_many(after)] == [r.val_acc for r in straight.evaluate_many(after)]
    assert charges(resumed) == charges(straight)
    if name != "synthetic":  # which charges every call in full, so it has nothing to remember
        assert 0 < straight.stats.cache_hits < straight.stats.evaluations
    for ev in (straight, stopped, resumed):
        ev.close()
        ev.close()  # closing twice is harmless


def test_a_wrapper_unwraps_to_what_it_wraps():
    table = TableEvaluator(CFG)
    wrapped = PrefetchEvaluator(PrefetchEvaluator(table))
    assert wrapped.unwrapped is table and table.unwrapped is table
    assert wrapped.state() == table.state() and wrapped.stats is table.stats
