"""Loading a config is declarative: it imports no torch and reads no file it names (a fresh
interpreter shows it). What needs files or this machine, the latency table, is checked by
``nas_gym.preflight`` where a search or an env starts: a bad table still stops ``gym.make``, the
vector env and ``run_search`` with one line, before a run folder exists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

import nas_gym  # noqa: F401  (registers the envs)
from nas_gym.config import ConfigError, load_config
from nas_gym.preflight import preflight

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
import json, sys
from nas_gym.config import load_config
config = load_config({preset!r}, {overrides!r})
print(json.dumps({{"torch": "torch" in sys.modules, "table": config.reward.latency_table}}))
"""


def _load_in_fresh_interpreter(preset: str, overrides: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(preset=preset, overrides=overrides)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("preset", ["mnist1d", "mnist1d-cell"])
def test_loading_a_config_imports_no_torch_and_reads_no_table(tmp_path, preset):
    missing = tmp_path / "no-such-table.json"
    loaded = _load_in_fresh_interpreter(preset, {"reward.cost": "latency_model", "reward.latency_table": str(missing)})
    assert loaded == {"torch": False, "table": str(missing)}


def _latency_overrides(table: Path) -> dict:
    return {"reward.cost": "latency_model", "reward.latency_table": str(table), "evaluator.cache": None}


def test_preflight_names_the_missing_table_in_one_line(tmp_path):
    config = load_config("mnist1d-tiny", _latency_overrides(tmp_path / "none.json"))
    with pytest.raises(ConfigError) as err:
        preflight(config)
    message = str(err.value)
    assert "\n" not in message and "reward.latency_table" in message and "does not exist" in message
    assert "nas-gym latency profile --config mnist1d-tiny" in message


def test_preflight_passes_a_config_that_needs_nothing_outside():
    preflight(load_config("mnist1d-tiny"))  # no latency table asked for: nothing to check, no error


@pytest.mark.parametrize("make", ["gym.make", "vec"])
def test_envs_run_the_preflight_before_making_an_evaluator(tmp_path, monkeypatch, make):
    import nas_gym.evaluators as evaluators

    made = []
    monkeypatch.setattr(evaluators, "make_evaluator", lambda *a, **k: made.append(a) or None)
    overrides = _latency_overrides(tmp_path / "none.json")
    with pytest.raises(ConfigError, match="does not exist"):
        if make == "gym.make":
            gym.make("NasGym/LayerChain-v0", config="mnist1d-tiny", evaluator="synthetic", overrides=overrides)
        else:
            from nas_gym.agents.sb3_vec import NasVecEnv

            NasVecEnv(2, config="mnist1d-tiny", evaluator="synthetic", overrides=overrides)
    assert made == []


def test_search_runs_the_preflight_before_a_run_folder_exists(tmp_path):
    from nas_gym.runs.search import run_search

    config = load_config("mnist1d-tiny", _latency_overrides(tmp_path / "none.json"))
    with pytest.raises(ConfigError, match="does not exist"):
        run_search(config, "random", 2, 0, tmp_path / "runs", evaluator="synthetic")
    assert not (tmp_path / "runs").exists()
