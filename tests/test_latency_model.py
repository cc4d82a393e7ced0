"""The latency model: coverage of the table, the prediction rule, determinism, the refusals of a
table from elsewhere, the CLI, and a search rewarded by predicted latency. Tables here are
profiled with 2 timed runs per layer: the tests check what is stored and summed, not how fast
anything is."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nas_gym.cli import app
from nas_gym.config import ConfigError, load_config
from nas_gym.evaluators.base import EvalResult
from nas_gym.latency.layers import key_shape, layers_for
from nas_gym.latency.model import ENV_VAR, LatencyTable, default_table_path, preset_identity
from nas_gym.latency.profile import profile
from nas_gym.preflight import preflight
from nas_gym.rewards import cost, reward
from nas_gym.spaces.cell.model import CellModule

runner = CliRunner()
PRESETS = ["mnist1d-tiny", "mnist1d-cell"]


def _table_path(preset: str) -> Path:
    cfg = load_config(preset)
    return default_table_path(preset_identity(cfg.space, cfg.input_shape, cfg.num_classes))


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("latency")


@pytest.fixture(scope="module")
def tables(table_dir) -> dict[str, LatencyTable]:
    """Both presets profiled once, saved where ``latency_table: auto`` looks (``$NAS_GYM_LATENCY``)."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_VAR, str(table_dir))
        for preset in PRESETS:
            out[preset] = profile(load_config(preset), repeats=2, warmup=1, fit_archs=4)
            out[preset].save(_table_path(preset))
    return out


@pytest.fixture
def latency_dir(tables, table_dir, monkeypatch) -> Path:
    """``$NAS_GYM_LATENCY`` pointing at the profiled tables."""
    monkeypatch.setenv(ENV_VAR, str(table_dir))
    return table_dir


@pytest.mark.parametrize("preset", PRESETS)
def test_table_covers_exactly_the_layers_of_every_architecture(tables, preset):
    """Every architecture of the space (all 1,174 chains, all 15,625 cells) is built only from
    layers the table holds, and every entry is used by some architecture."""
    table = tables[preset]
    space = load_config(preset).search_space()
    used = {key for arch in space.enumerate() for key in table.layers.keys(arch)}
    assert used == set(table.entries)
    assert all(v > 0 for v in table.entries.values())


def test_layers_of_a_large_space_are_covered_without_enumerating_it():
    cfg = load_config("mnist1d")  # 2,780,120 chains of up to 6 ops
    space = cfg.search_space()
    layers = layers_for(space, cfg.input_shape, cfg.num_classes)
    every = set(layers.all_keys())
    rng = np.random.default_rng(0)
    for _ in range(300):
        assert set(layers.keys(space.sample(rng))) <= every


@pytest.mark.parametrize("preset", PRESETS)
def test_keys_name_the_shapes_the_built_network_sees(preset):
    """The decomposition agrees with the model the space builds: each chain op's module, each
    cell copy, sees the input shape its key names."""
    cfg = load_config(preset)
    space, shape = cfg.search_space(), cfg.input_shape
    layers = layers_for(space, shape, cfg.num_classes)
    rng, used = np.random.default_rng(1), set()
    for _ in range(5):
        arch = space.sample(rng)
        model, seen = space.build_model(arch, shape, cfg.num_classes), []
        children = list(model.children())
        watched = children[:len(arch.ops)] if preset == "mnist1d-tiny" else [m for m in children if isinstance(m, CellModule)]
        for m in watched:
            m.register_forward_pre_hook(lambda _, args, seen=seen: seen.append(tuple(args[0].shape[1:])))
        model.eval()(torch.zeros((1, *shape)))
        keys = layers.keys(arch)
        if preset == "mnist1d-tiny":
            assert len(children) == len(arch.ops) + 3  # ops, then pooling, flatten, linear: the head key
            assert seen == [key_shape(k) for k in keys[:-1]]
        else:
            assert sorted(set(seen)) == sorted(set(layers.stage_shapes))
        used.update(keys)
    for key in used:  # every module the profile times runs at its key's shape
        layers.build(key).eval()(torch.zeros((1, *key_shape(key))))


@pytest.mark.parametrize("preset", PRESETS)
def test_prediction_is_the_sum_of_entries_plus_the_fitted_constant(tables, preset):
    table = tables[preset]
    space = load_config(preset).search_space()
    rng = np.random.default_rng(2)
    for _ in range(20):
        arch = space.sample(rng)
        total = sum(table.entries[k] for k in table.layers.keys(arch))
        assert table.predict_ms(arch) == pytest.approx(table.scale * total + table.intercept_ms, rel=1e-12)
        assert table.predict_ms(arch.text()) == table.predict_ms(arch)


def test_a_cell_counts_its_additions_and_an_unconnected_cell_its_zeros(tables):
    table = tables["mnist1d-cell"]
    space = load_config("mnist1d-cell").search_space()
    full = space.parse("|conv3~0|+|conv3~0|conv3~1|+|conv3~0|conv3~1|conv3~2|")
    names = [k.partition("@")[0] for k in table.layers.keys(full)]
    assert names.count("conv3") == 6 * 3 and names.count("add") == 3 * 3  # node 2: 1 addition, node 3: 2; 3 stages
    cut = space.parse("|none~0|+|conv3~0|none~1|+|none~0|conv1~1|none~2|")  # no path from input to output
    assert [k.partition("@")[0] for k in table.layers.keys(cut)] == ["stem", "zeros", "reduce1", "zeros", "reduce2",
                                                                    "zeros", "head"]


def test_saved_table_predicts_the_same_after_loading(tables, tmp_path):
    table = tables["mnist1d-tiny"]
    path = tmp_path / "t.json"
    table.save(path)
    loaded, again = LatencyTable.load(path), LatencyTable.load(path)
    assert loaded.to_dict() == table.to_dict()
    space = load_config("mnist1d-tiny").search_space()
    archs = [space.sample(np.random.default_rng(3)) for _ in range(10)]
    assert [loaded.predict_ms(a.text()) for a in archs] == [again.predict_ms(a.text()) for a in archs] \
        == [table.predict_ms(a) for a in archs]


def test_stored_identity(tables):
    table = tables["mnist1d-tiny"]
    assert table.cpu and table.torch == torch.__version__ and table.device == "cpu" and table.threads == 1
    assert table.preset["name"] == "mnist1d-tiny" and table.preset["input_shape"] == [1, 40]
    assert table.repeats == 2 and len(table.fit["archs"]) == 4 and table.scale != 0


def test_reward_cost_reads_the_table(tables, latency_dir):
    cfg = load_config("mnist1d-tiny", {"reward.cost": "latency_model", "reward.kind": "mnas", "reward.target": 0.1,
                                       "evaluator.kind": "table"})
    assert Path(cfg.reward.latency_table) == _table_path("mnist1d-tiny")
    result = EvalResult(arch="conv3-16|maxpool|conv3-32", val_acc=0.5, params=1, flops=1)
    predicted = tables["mnist1d-tiny"].predict_ms(result.arch)
    assert cost(result, cfg.reward) == predicted
    assert reward(result, cfg.reward, 10) == pytest.approx(0.5 * (predicted / 0.1) ** -0.07)


def _edited(table: LatencyTable, tmp_path: Path, **changes) -> Path:
    raw = table.to_dict() | changes
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize("changes, overrides, needle", [
    ({"cpu": "Some Other CPU"}, {}, "measured for CPU 'Some Other CPU'"),
    ({"torch": "1.0.0"}, {}, "measured for torch '1.0.0'"),
    ({"device": "cuda NVIDIA A100"}, {}, "measured for device 'cuda NVIDIA A100'"),
    ({}, {"space.max_depth": 3}, "measured for preset 'mnist1d-tiny"),
    ({"format": 99}, {}, "is not a latency table"),
], ids=["cpu", "torch", "device", "preset", "format"])
def test_table_from_elsewhere_is_refused_in_one_line(tables, tmp_path, changes, overrides, needle):
    path = _edited(tables["mnist1d-tiny"], tmp_path, **changes)
    config = load_config("mnist1d-tiny", {"reward.cost": "latency_model", "reward.latency_table": str(path), **overrides})
    with pytest.raises(ConfigError) as err:  # loading reads no file; the preflight before a run does
        preflight(config)
    message = str(err.value)
    assert needle in message and "nas-gym latency profile --config mnist1d-tiny" in message and "\n" not in message


def test_unsupported_space_is_refused_in_one_line(tmp_path):
    mlp = Path(__file__).resolve().parent.parent / "examples" / "mlp_space.py"
    preset = tmp_path / "mlp.yaml"
    preset.write_text(f"name: mlp\nspace:\n  kind: {mlp}:MLPSpace\ndata:\n  name: mnist1d\n")
    config = load_config(preset, {"reward.cost": "latency_model"})
    with pytest.raises(ConfigError, match=r"needs a space with latency_layers\(input_shape, num_classes\), which 'mlp' "
                                          "lacks; use reward.cost 'latency'") as err:
        preflight(config)
    assert "\n" not in str(err.value)


def test_missing_table_stops_search_with_exit_2_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "empty"))
    result = runner.invoke(app, ["search", "--config", "mnist1d-tiny", "--agent", "random", "--episodes", "2",
                                 "--evaluator", "table", "--logdir", str(tmp_path / "runs"),
                                 "--set", "reward.cost=latency_model"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0]
    assert "`nas-gym latency profile --config mnist1d-tiny`" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_profile_command_writes_a_table_and_refuses_bad_counts(tmp_path):
    out = tmp_path / "t.json"
    result = runner.invoke(app, ["latency", "profile", "--config", "mnist1d-tiny", "--repeats", "2", "--fit-archs", "3",
                                 "--out", str(out), "--set", "space.max_depth=2"])
    assert result.exit_code == 0, result.output
    table = LatencyTable.load(out)
    assert table.preset["space"]["max_depth"] == 2 and len(table.fit["archs"]) == 3
    assert set(table.entries) == set(layers_for(table.space, (1, 40), 10).all_keys())
    bad = runner.invoke(app, ["latency", "profile", "--config", "mnist1d-tiny", "--repeats", "0"])
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1 and "--repeats" in bad.output


def test_search_rewarded_by_predicted_latency_records_it(tables, latency_dir, tmp_path):
    from nas_gym.runs.search import run_search

    cfg = load_config("mnist1d-tiny", {"reward.cost": "latency_model", "reward.kind": "mnas", "reward.target": 0.1,
                                       "evaluator.kind": "table", "evaluator.cache": None})
    summary = run_search(cfg, "random", 6, 0, tmp_path / "runs")
    rows = list(csv.DictReader((summary.run_dir / "evaluations.csv").open()))
    assert len(rows) == 6
    table = tables["mnist1d-tiny"]
    for row in rows:
        # the reward floors a cost at 1e-3 ms (a busy machine's profile can predict ~0 for tiny chains)
        expected = float(row["val_acc"]) * (max(table.predict_ms(row["arch"]), 1e-3) / 0.1) ** -0.07
        assert float(row["reward"]) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("preset, env_id, evaluator", [("mnist1d-tiny", "NasGym/LayerChain-v0", "table"),
                                                       ("mnist1d-cell", "NasGym/Cell-v0", "proxy:params")])
def test_env_info_reports_the_predicted_latency_as_cost(tables, latency_dir, preset, env_id, evaluator):
    import gymnasium as gym

    import nas_gym  # noqa: F401  (registers the envs)

    overrides = {"reward.cost": "latency_model", "reward.kind": "mnas", "reward.target": 0.1, "evaluator.cache": None}
    env = gym.make(env_id, config=preset, evaluator=evaluator, overrides=overrides, seed=0)
    space = env.unwrapped.space
    arch = space.sample(np.random.default_rng(4))
    env.reset()
    for action in space.actions_of(arch):
        _, _, done, _, info = env.step(action)
    env.close()
    assert done and info["cost"] == tables[preset].predict_ms(arch.text())


def test_a_negative_intercept_never_predicts_negative_latency(tables):
    """A profile taken on a busy machine can fit a negative intercept; no prediction goes below 0."""
    import dataclasses

    table = tables["mnist1d-tiny"]
    dipped = dataclasses.replace(table, intercept_ms=-1e6)
    space = load_config("mnist1d-tiny").search_space()
    archs = [space.sample(np.random.default_rng(s)) for s in range(5)]
    assert all(table.predict_ms(a) > 0 for a in archs)
    assert [dipped.predict_ms(a) for a in archs] == [0.0] * 5
