"""SB3 hyperparameter files (envs_config/agents/*.yaml): they load, every entry builds its model,
the env's preset picks its entry over ``default``, ``hparams`` override single keys, typos fail.

Models are constructed on the tiny preset with the synthetic evaluator; only the preset's own
entry also learns, for a few episodes.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import yaml
from torch import nn

from nas_gym.agents import hparams as hp
from nas_gym.agents.base import AgentError
from nas_gym.agents.sb3 import A2CAgent, DQNAgent, MaskablePPOAgent, PPOAgent
from nas_gym.config import PRESET_DIRS, load_config, preset_names
from tests.conftest import make_synthetic_env

AGENTS = {"ppo": PPOAgent, "a2c": A2CAgent, "dqn": DQNAgent, "maskable_ppo": MaskablePPOAgent}
ROOT = Path(__file__).resolve().parent.parent
# Stored by SB3 in another form (a TrainFreq tuple, a policy class): checked apart or not at all.
NOT_VERBATIM = {"policy", "policy_kwargs", "train_freq"}


def entries(name: str) -> dict[str, dict]:
    return yaml.safe_load((ROOT / "envs_config" / "agents" / f"{name}.yaml").read_text())


def env_named(preset: str):
    """The tiny synthetic env under another preset name (same space, so the model fits)."""
    cfg = load_config("mnist1d-tiny").model_copy(update={"name": preset})
    return make_synthetic_env(cfg)


@pytest.mark.parametrize("name", AGENTS)
def test_file_loads_with_default_and_known_presets(name):
    raw = entries(name)
    assert "default" in raw and "mnist1d-tiny" in raw
    presets = set(preset_names())
    assert set(raw) - {"default"} <= presets, "an entry that names no preset would never be used"
    for entry in raw.values():
        assert isinstance(entry, dict) and entry["gamma"] in (1.0, 0.99)
    assert hp.hparams_file(name) in [d / "agents" / f"{name}.yaml" for d in PRESET_DIRS]


@pytest.mark.parametrize("name", AGENTS)
def test_every_entry_builds_its_model(name):
    cls = AGENTS[name]
    for preset, entry in entries(name).items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. SB3's warning of a rollout that minibatches do not divide
            agent = cls(make_synthetic_env(), seed=0, hparams=entry)  # every key, as given, over the file's
        for key, value in entry.items():
            if key not in NOT_VERBATIM:
                assert getattr(agent.model, key) == value, f"{name}.yaml:{preset}: {key}"
        assert agent.model.policy.net_arch == entry["policy_kwargs"]["net_arch"]
        if "train_freq" in entry:
            assert agent.model.train_freq.frequency == entry["train_freq"]


@pytest.mark.parametrize("name", AGENTS)
def test_preset_entry_learns(name):
    agent = AGENTS[name](make_synthetic_env(), seed=0)
    assert agent.hparams_source.endswith(f"{name}.yaml:mnist1d-tiny")
    agent.learn(6)
    assert agent.episodes_done == 6


def test_preset_entry_beats_default():
    ppo = entries("ppo")
    assert ppo["mnist1d-tiny"]["n_steps"] != ppo["default"]["n_steps"]
    assert PPOAgent(make_synthetic_env()).model.n_steps == ppo["mnist1d-tiny"]["n_steps"]
    other = PPOAgent(env_named("my-own-space"))
    assert other.model.n_steps == ppo["default"]["n_steps"]
    assert other.hparams_source.endswith("ppo.yaml:default")


def test_hparams_override_single_keys():
    tiny = entries("maskable_ppo")["mnist1d-tiny"]
    agent = MaskablePPOAgent(make_synthetic_env(), hparams={"learning_rate": 0.0042})
    assert agent.model.learning_rate == 0.0042
    assert agent.model.n_steps == tiny["n_steps"] and agent.model.ent_coef == tiny["ent_coef"], "the rest stays"


def test_unknown_keys_fail_in_one_line(tmp_path, monkeypatch):
    with pytest.raises(AgentError, match=r"unknown hyperparameter\(s\) n_step for PPO; known: .*n_steps") as e:
        PPOAgent(make_synthetic_env(), hparams={"n_step": 8})
    assert "\n" not in str(e.value)

    (tmp_path / "ppo.yaml").write_text("default:\n  n_steps: 8\n  n_stepz: 3\n")
    monkeypatch.setattr(hp, "HPARAM_DIRS", (tmp_path,))
    with pytest.raises(AgentError, match=r"n_stepz for PPO in .*ppo\.yaml:default"):
        PPOAgent(make_synthetic_env())


def test_lookup_rules_on_a_custom_file(tmp_path, monkeypatch):
    """The preset's entry stands alone (no implicit merge); merge keys share; activations by name."""
    (tmp_path / "a2c.yaml").write_text(
        "default: &d\n  n_steps: 4\n  ent_coef: 0.5\n"
        "mnist1d-tiny:\n  <<: *d\n  n_steps: 6\n  policy_kwargs: {net_arch: [8], activation_fn: tanh}\n"
        "digits:\n  n_steps: 3\n")
    monkeypatch.setattr(hp, "HPARAM_DIRS", (tmp_path / "missing", tmp_path))
    tiny = A2CAgent(make_synthetic_env())
    assert (tiny.model.n_steps, tiny.model.ent_coef) == (6, 0.5)
    assert tiny.model.policy.activation_fn is nn.Tanh
    assert A2CAgent(env_named("digits")).model.ent_coef == 0.0, "digits has no ent_coef: SB3's default, not the file's"
    assert A2CAgent(env_named("elsewhere")).model.n_steps == 4
    with pytest.raises(AgentError, match="activation_fn 'swish'"):
        A2CAgent(make_synthetic_env(), hparams={"policy_kwargs": {"activation_fn": "swish"}})

    monkeypatch.setattr(hp, "HPARAM_DIRS", (tmp_path / "missing",))
    with pytest.raises(AgentError, match="no hyperparameter file agents/a2c.yaml"):
        A2CAgent(make_synthetic_env())


def test_files_ship_in_the_wheel():
    """hatch force-includes envs_config as nas_gym/presets, which PRESET_DIRS searches first."""
    tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = project["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert include["envs_config"] == "nas_gym/presets"
    assert PRESET_DIRS[0].relative_to(ROOT) == Path("nas_gym/presets")
    assert hp.HPARAM_DIRS == tuple(d / "agents" for d in PRESET_DIRS)
