"""``with_config`` is part of the Backend protocol, so nothing probes for it: the serial backend
trains another config's recipe on the data it holds, a backend bound to one recipe returns
itself, every backend handed to an evaluator is asked for the evaluator's recipe, and the two
fidelities of a serial multi-fidelity search train on one copy of the data; the surrogate build
gives each seed its recipe on its one pool the same way."""

from __future__ import annotations

import pytest

from nas_gym.config import ConfigError, load_config
from nas_gym.data import load_dataset
from nas_gym.evaluators import make_evaluator
from nas_gym.evaluators.base import EvalResult
from nas_gym.evaluators.training import SerialBackend, TrainingEvaluator, make_backend
from nas_gym.execution.backends import Backend, BackendBase
from nas_gym.storage.cache import MemoryCache, ResultCache
from nas_gym.surrogates.data import DataPlan


def tiny(**overrides):
    return load_config("mnist1d-tiny", {"evaluator.cache": None, "runtime.device": "cpu", **overrides})


class Recording(BackendBase):
    """Answers 0.5 for everything, and remembers the configs it was asked to train."""

    def __init__(self) -> None:
        self.asked: list = []

    def with_config(self, config):
        self.asked.append(config)
        return self

    def run(self, archs, on_result=None):
        return [EvalResult(arch=a.text(), val_acc=0.5, params=1, flops=1) for a in archs]


def test_every_backend_satisfies_the_protocol():
    assert isinstance(Recording(), Backend)
    assert isinstance(make_backend(tiny()), Backend)


def test_serial_backend_trains_another_recipe_on_the_same_data():
    config = tiny()
    data = load_dataset(config.data)
    serial = make_backend(config, data)
    longer = serial.with_config(tiny(**{"train.epochs": 5, "train.lr": 0.01}))
    assert isinstance(longer, SerialBackend) and longer.data is serial.data
    assert (longer.train.epochs, longer.train.lr) == (5, 0.01) and serial.train.epochs == config.train.epochs
    assert longer.space == config.search_space()


def test_serial_backend_refuses_a_config_of_other_data():
    serial = make_backend(tiny(), load_dataset(tiny().data))
    with pytest.raises(ConfigError, match="data.name is 'digits' but this serial backend holds 'mnist1d'"):
        serial.with_config(load_config("digits"))


def test_a_backend_bound_to_one_recipe_returns_itself():
    class Fixed(BackendBase):
        def run(self, archs, on_result=None):
            return []

    fixed = Fixed()
    assert fixed.with_config(tiny()) is fixed


def test_the_evaluator_asks_its_backend_for_its_own_recipe():
    config = tiny(**{"train.epochs": 3})
    backend = Recording()
    with TrainingEvaluator(config, cache=MemoryCache(), backend=backend) as evaluator:
        assert evaluator.backend is backend
    assert backend.asked == [config]


def test_serial_fidelities_share_the_data_and_train_their_own_epochs():
    config = tiny(**{"train.epochs": 1, "evaluator.high_epochs": 2})
    evaluator = make_evaluator(config, data=load_dataset(config.data))
    try:
        low, high = evaluator.low.backend, evaluator.high.backend
        assert isinstance(low, SerialBackend) and isinstance(high, SerialBackend)
        assert low.data is high.data  # one copy on the device, not one per fidelity
        assert (low.train.epochs, high.train.epochs) == (1, 2)
    finally:
        evaluator.close()


def test_surrogate_build_gives_every_seed_its_recipe_on_the_one_pool(tmp_path):
    from nas_gym.runs import surrogate_build as script

    pool = object()  # the build's process pool: only passed along here, never started
    config = tiny()
    build = script.Build(config, DataPlan(seeds=(0, 3)), ResultCache(tmp_path / "c.sqlite"),
                         script.PoolBackend(pool, config.train))
    backends = {seed: evaluator.backend for seed, evaluator in build.evaluators.items()}
    assert all(b.pool is pool for b in backends.values())
    assert {seed: b.train.seed for seed, b in backends.items()} == {0: 0, 3: 3}
    cache_only = script.CacheOnlyBackend()
    assert cache_only.with_config(config) is cache_only
