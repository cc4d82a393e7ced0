"""One registry of evaluator kinds (``nas_gym.evaluator_kinds``) drives config validation, the
CLI's help and ``make_evaluator``: a kind registered there (here a test's own) is accepted,
listed and built with no other edit, and one missing from it is refused everywhere alike."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from nas_gym.cli import app
from nas_gym.config import ConfigError, EvaluatorConfig, load_config
from nas_gym.evaluator_kinds import KINDS, EvaluatorKind, help_text
from nas_gym.evaluators import make_evaluator
from nas_gym.evaluators.synthetic import SyntheticEvaluator


def make_constant(config, kind, *, data, cache, backend, run_seed):
    """A test's evaluator kind: the synthetic evaluator under another name."""
    return SyntheticEvaluator(config.search_space(), seed=run_seed, num_classes=config.num_classes)


CONSTANT = EvaluatorKind("constant", f"{__name__}:make_constant", "a test's kind", ("epochs",))


@pytest.fixture
def with_constant(monkeypatch):
    monkeypatch.setitem(KINDS, "constant", CONSTANT)


def test_a_registered_kind_is_accepted_listed_and_built(with_constant):
    config = load_config("mnist1d-tiny", {"evaluator.kind": "constant", "evaluator.epochs": 3})  # it reads epochs
    evaluator = make_evaluator(config, run_seed=5)
    expected = SyntheticEvaluator(config.search_space(), seed=5)
    assert isinstance(evaluator, SyntheticEvaluator) and (evaluator.weights == expected.weights).all()
    assert "constant: a test's kind" in help_text()


def test_an_unregistered_kind_is_refused_alike_by_config_and_make_evaluator():
    with pytest.raises(ConfigError) as by_config:
        load_config("mnist1d-tiny", {"evaluator.kind": "constant"})
    with pytest.raises(ConfigError) as by_factory:
        make_evaluator(load_config("mnist1d-tiny"), kind="constant")
    listed = "is not one of train, table, surrogate, supernet, synthetic, proxy:<name>"
    assert listed in str(by_config.value) and listed in str(by_factory.value)


@pytest.mark.parametrize("kind", ["proxy", "train:fast", "synthetic:x"])
def test_a_family_needs_its_variant_and_a_single_kind_has_none(kind):
    with pytest.raises(ConfigError, match="is not one of"):
        load_config("mnist1d-tiny", {"evaluator.kind": kind})


def test_an_option_is_refused_where_the_kind_does_not_read_it():
    with pytest.raises(ConfigError, match="epochs is read by the table evaluator only, not 'synthetic'"):
        load_config("mnist1d-tiny", {"evaluator.kind": "synthetic", "evaluator.epochs": 3})


def test_every_option_the_registry_names_is_an_evaluator_field():
    named = {option for kind in KINDS.values() for option in kind.options}
    assert named and named <= set(EvaluatorConfig.model_fields)


def test_unknown_proxy_names_the_registry_variants():
    with pytest.raises(ConfigError, match="unknown proxy 'nope'; choose one of " + ", ".join(KINDS["proxy"].variants)):
        make_evaluator(load_config("mnist1d-tiny"), kind="proxy:nope")


@pytest.mark.parametrize("command", ["search", "compare"])
def test_cli_help_lists_every_registered_kind(command, with_constant, monkeypatch):
    import importlib

    # The help a CLI started now would show (the command's annotations are read when it runs).
    monkeypatch.setattr(importlib.import_module(f"nas_gym.cli.{command}"), "EVALUATOR_HELP", help_text())
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    shown = re.sub(r"[\s│]+", " ", result.output)
    for kind in KINDS.values():
        assert f"{kind.label()}: {kind.description}" in shown, kind.name
