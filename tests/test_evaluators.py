"""TrainingEvaluator: cache first, failures cached, de-duplication, budget charged; the factory."""

import pytest
import torch

from nas_gym.config import ConfigError, load_config
from nas_gym.data import Dataset
from nas_gym.evaluators import make_evaluator
from nas_gym.evaluators.base import EvalResult, Evaluator
from nas_gym.evaluators.synthetic import SyntheticEvaluator
from nas_gym.evaluators.training import TrainingEvaluator
from nas_gym.spaces.base import ArchitectureError
from nas_gym.spaces.layer_chain.chain import Chain
from nas_gym.storage.cache import MemoryCache, ResultCache, result_context
from nas_gym.training import train as train_mod

A = Chain.parse("conv3-16|maxpool|conv3-32")
B = Chain.parse("conv5-16")
BAD = Chain.parse("conv3-16|avgpool")  # the fake trainer's NaN architecture


def fake_data(name: str = "mnist1d") -> Dataset:
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(n, 1, 40, generator=g), torch.randint(0, 10, (n,), generator=g)

    return Dataset(name, *split(32), *split(16), *split(16), num_classes=10)


class FakeTrainer:
    """Stands in for ``nas_gym.training.train.evaluate_architecture``: instant, counts its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, arch, data, config, runtime, *, want_test=False, space=None) -> EvalResult:
        self.calls.append(arch.text())
        if "avgpool" in arch.text():
            return EvalResult.failure(arch.text(), "nan_loss", params=7, flops=70, train_seconds=0.5, fidelity=3.0)
        return EvalResult(arch=arch.text(), val_acc=len(arch) / 10, params=len(arch) * 100, flops=1000,
                          train_seconds=2.0, train_loss=0.5, fidelity=float(config.epochs))


@pytest.fixture
def trainer(monkeypatch) -> FakeTrainer:
    fake = FakeTrainer()
    monkeypatch.setattr(train_mod, "evaluate_architecture", fake)
    return fake


def config(tmp_path, **overrides):
    return load_config("mnist1d-tiny", overrides={"evaluator.cache": str(tmp_path / "c.sqlite"), **overrides})


def evaluator(tmp_path, **overrides) -> TrainingEvaluator:
    return TrainingEvaluator(config(tmp_path, **overrides), data=fake_data())


def test_is_an_evaluator_with_the_documented_attributes(tmp_path):
    ev = evaluator(tmp_path)
    assert isinstance(ev, Evaluator)
    assert ev.space == ev.config.search_space((1, 40)) and ev.num_classes == 10
    assert ev.context == result_context(ev.config, ev.space)
    assert isinstance(ev.cache, ResultCache) and ev.data.device == ev.device


def test_cache_hit_skips_training(tmp_path, trainer):
    ev = evaluator(tmp_path)
    first = ev.evaluate(A)
    assert ev.evaluate(A) == first
    assert trainer.calls == [A.text()]
    s = ev.stats
    assert (s.evaluations, s.trained, s.cache_hits, s.train_seconds) == (2, 1, 1, 2.0)


def test_results_persist_for_a_new_evaluator_of_the_same_context(tmp_path, trainer):
    first = evaluator(tmp_path).evaluate(A)
    again = evaluator(tmp_path, **{"runtime.threads": 2})  # runtime is not part of the context
    assert again.evaluate(A) == first and again.stats.cache_hits == 1
    other = evaluator(tmp_path, **{"train.seed": 1})  # another recipe: another context
    other.evaluate(A)
    assert trainer.calls == [A.text(), A.text()]


def test_failures_are_cached_with_their_reason(tmp_path, trainer):
    ev = evaluator(tmp_path)
    failed = ev.evaluate(BAD)
    assert (failed.status, failed.reason) == ("failed", "nan_loss")
    again = evaluator(tmp_path).evaluate(BAD)
    assert (again.status, again.reason, again.params) == ("failed", "nan_loss", 7)
    assert trainer.calls == [BAD.text()]
    assert ev.stats.failures == 1


def test_evaluate_many_keeps_order_and_trains_duplicates_once(tmp_path, trainer):
    ev = evaluator(tmp_path)
    ev.evaluate(B)  # already cached before the batch
    results = ev.evaluate_many([A, B, A, BAD, A])
    assert [r.arch for r in results] == [A.text(), B.text(), A.text(), BAD.text(), A.text()]
    assert results[0] == results[2] == results[4]
    assert trainer.calls == [B.text(), A.text(), BAD.text()]
    s = ev.stats
    assert (s.evaluations, s.trained, s.cache_hits, s.failures) == (6, 3, 3, 1)


def test_invalid_architecture_is_a_caller_error(tmp_path, trainer):
    ev = evaluator(tmp_path)
    with pytest.raises(ArchitectureError, match="not in the search space"):
        ev.evaluate(Chain.parse("maxpool|maxpool"))
    with pytest.raises(ArchitectureError, match="vocabulary"):
        ev.evaluate_many([A, Chain.parse("conv7-99")])  # checked before anything trains
    assert trainer.calls == [] and len(ev.cache) == 0 and ev.stats.evaluations == 0


def test_the_first_stored_result_wins(tmp_path, trainer, monkeypatch):
    """Another process storing the same key while we train: everyone returns its result."""
    ev = evaluator(tmp_path)
    other = ResultCache(tmp_path / "c.sqlite")
    theirs = EvalResult(arch=A.text(), val_acc=0.99, params=1, flops=1, train_loss=0.1)

    def racing(arch, *args, **kwargs):
        other.put(arch, ev.context, theirs)
        return trainer(arch, *args, **kwargs)

    monkeypatch.setattr(train_mod, "evaluate_architecture", racing)
    assert ev.evaluate(A) == theirs
    assert ev.stats.trained == 1  # the training done here is still charged
    other.close()


def test_no_cache_file_still_trains_each_architecture_once(tmp_path, trainer):
    ev = TrainingEvaluator(load_config("mnist1d-tiny", overrides={"evaluator.cache": None}), data=fake_data())
    assert isinstance(ev.cache, MemoryCache)
    ev.evaluate(A)
    ev.evaluate(A)
    assert trainer.calls == [A.text()] and list(tmp_path.iterdir()) == []


def test_mismatched_data_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="data.name is 'mnist1d' but the dataset passed in is 'digits'"):
        TrainingEvaluator(config(tmp_path), data=fake_data("digits"))


def test_unavailable_device_is_a_config_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ConfigError, match="runtime.device.*CUDA is not available"):
        evaluator(tmp_path, **{"runtime.device": "cuda"})


@pytest.mark.parametrize("kind, cls", [("train", TrainingEvaluator), ("synthetic", SyntheticEvaluator)], ids=["train", "synthetic"])
def test_make_evaluator(tmp_path, kind, cls):
    ev = make_evaluator(config(tmp_path), kind, data=fake_data())
    assert isinstance(ev, cls) and isinstance(ev, Evaluator)
    assert ev.space.ops == config(tmp_path).search_space().ops


def test_make_evaluator_defaults_to_the_config_kind(tmp_path):
    ev = make_evaluator(config(tmp_path, **{"evaluator.kind": "synthetic"}))
    assert isinstance(ev, SyntheticEvaluator)


def test_make_evaluator_table_is_the_shipped_benchmark(tmp_path):
    from nas_gym.evaluators.table import TableEvaluator

    assert isinstance(make_evaluator(config(tmp_path), "table"), TableEvaluator)


def test_make_evaluator_unknown_kind(tmp_path):
    with pytest.raises(ConfigError, match="'oracle' is not one of"):
        make_evaluator(config(tmp_path), "oracle")


@pytest.mark.slow
def test_real_training_then_cache_hit(tmp_path):
    cfg = load_config("mnist1d-tiny", overrides={"evaluator.cache": str(tmp_path / "c.sqlite"),
                                                 "data.root": str(tmp_path / "data")})
    ev = make_evaluator(cfg)
    arch = Chain.parse("conv3-16|maxpool|conv3-32")
    first = ev.evaluate(arch)
    assert first.ok and 0.1 < first.val_acc <= 1.0 and first.train_seconds > 0 and first.fidelity == cfg.train.epochs
    assert ev.evaluate(arch) == first
    assert (ev.stats.trained, ev.stats.cache_hits) == (1, 1)
    fresh = TrainingEvaluator(cfg, data=ev.data)
    assert fresh.evaluate(arch) == first and fresh.stats.trained == 0
