"""A second and a third space need no change outside their own module, preset and registration:
the example user space (``examples/mlp_space.py``, loaded from a file) and the cell space run
through ``nas-gym search`` with every built-in agent, and a wrong evaluator space is refused."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nas_gym.agents.base import BUILTIN_AGENTS, resolve_agent
from nas_gym.agents.fidelity import FidelityAgent
from nas_gym.cli import app
from nas_gym.config import ConfigError, load_config
from nas_gym.envs.nas_env import NasEnv
from nas_gym.evaluators.synthetic import SyntheticEvaluator

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "mlp_space.yaml")
# Weight-sharing agents train a supernet, which a space provides only if it builds one.
NEEDS_SUPERNET = {"darts", "enas"}
# Multi-fidelity agents need an evaluator that answers at a chosen number of epochs, and refuse the
# synthetic one: tests/test_multi_fidelity_agents.py runs them on curve tables of both shipped
# spaces, tests/test_training_fidelity.py on the example space with real training.
NEEDS_FIDELITY = {name for name in BUILTIN_AGENTS if issubclass(resolve_agent(name), FidelityAgent)}
AGENTS = sorted(set(BUILTIN_AGENTS) - NEEDS_SUPERNET - NEEDS_FIDELITY)


def search(tmp_path: Path, agent: str, config: str):
    args = ["search", "--agent", agent, "--config", config, "--episodes", "6", "--seed", "0",
            "--logdir", str(tmp_path / "runs"), "--evaluator", "synthetic"]
    return CliRunner().invoke(app, args, catch_exceptions=False)


@pytest.mark.slow
@pytest.mark.parametrize("config", [EXAMPLE, "mnist1d-cell"], ids=["example-mlp", "cell"])
@pytest.mark.parametrize("agent", AGENTS)
def test_every_agent_searches_a_new_space(tmp_path, monkeypatch, agent, config):
    monkeypatch.chdir(ROOT)  # the example preset names its space by a path relative to the checkout
    result = search(tmp_path, agent, config)
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    rows = list(csv.DictReader((run_dir / "evaluations.csv").open()))
    space = load_config(config).search_space()
    assert rows and all(space.violation(space.parse(r["arch"])) is None for r in rows)


def test_example_space_loads_from_a_file(monkeypatch):
    monkeypatch.chdir(ROOT)
    space = load_config(EXAMPLE).search_space()
    assert space.size() == 3 + 9 + 27
    assert {a.text() for a in space.enumerate()} >= {"mlp-16", "mlp-256-16-64"}


def test_unknown_space_kind_is_one_line(monkeypatch):
    with pytest.raises(ConfigError, match=r"space: unknown space kind 'hexagon'; choose one of cell, layer_chain"):
        load_config("mnist1d", {"space": {"kind": "hexagon"}})
    with pytest.raises(ConfigError, match="space file nowhere.py does not exist"):
        load_config("mnist1d", {"space": {"kind": "nowhere.py:Space"}})


def test_env_refuses_an_evaluator_of_another_space():
    cell = load_config("mnist1d-cell")
    chain_evaluator = SyntheticEvaluator(load_config("mnist1d-tiny").search_space())
    with pytest.raises(ConfigError, match="evaluator's space .* differs from config 'mnist1d-cell'"):
        NasEnv(cell, evaluator=chain_evaluator)
