"""Presets load, every field is validated, and errors are one line naming the key."""

import pytest

from nas_gym.config import ConfigError, load_config, parse_overrides, preset_names


@pytest.mark.parametrize("name", ["mnist1d", "mnist1d-tiny", "digits", "cifar10"])
def test_presets_load(name):
    cfg = load_config(name)
    assert cfg.name == name
    space = cfg.search_space()
    assert space.size() > 0
    assert len(cfg.context_hash()) == 20


def test_preset_names_lists_shipped_presets():
    assert {"mnist1d", "mnist1d-tiny", "digits", "cifar10"} <= set(preset_names())


def test_overrides_dotted_and_nested():
    cfg = load_config("mnist1d", {"train.epochs": 2, "space": {"max_depth": 3}})
    assert cfg.train.epochs == 2 and cfg.space.max_depth == 3
    assert cfg.space.ops == load_config("mnist1d").space.ops


def test_context_hash_tracks_trainer_and_data_not_runtime():
    base = load_config("mnist1d")
    assert base.context_hash() == load_config("mnist1d", {"runtime.threads": 2}).context_hash()
    assert base.context_hash() == load_config("mnist1d", {"data.root": "/elsewhere"}).context_hash()
    assert base.context_hash() != load_config("mnist1d", {"train.seed": 1}).context_hash()
    assert base.context_hash() != load_config("mnist1d", {"data.val_fraction": 0.3}).context_hash()


@pytest.mark.parametrize("overrides,needle", [
    ({"train.epochz": 3}, "train.epochz: unknown key"),
    ({"train.epochs": -1}, "train.epochs"),
    ({"train.optimizer": "lion"}, "train.optimizer"),
    ({"data.name": "imagenet"}, "data.name"),
    ({"space.ops": ["conv4-32"]}, "kernel must be odd"),
    ({"space.min_depth": 9}, "min_depth 9 is above max_depth"),
    ({"reward.kind": "mnas"}, "needs a positive 'target'"),
    ({"runtime.device": "tpu"}, "runtime.device"),
    ({"evaluator.kind": "oracle"}, "evaluator.kind"),
    ({"bogus": 1}, "bogus: unknown key"),
], ids=lambda v: str(v)[:30])
def test_bad_values_give_one_line(overrides, needle):
    with pytest.raises(ConfigError) as e:
        load_config("mnist1d", overrides)
    msg = str(e.value)
    assert needle in msg and "\n" not in msg


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("space: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        load_config("nope")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(scalar)


def test_parse_overrides():
    assert parse_overrides(["train.epochs=4", "runtime.device=cpu"]) == {"train.epochs": 4, "runtime.device": "cpu"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["train.epochs"])
