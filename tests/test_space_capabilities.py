"""A space's optional capabilities are declared protocols (``nas_gym.spaces.capabilities``), not
names probed with ``hasattr`` or a switch on the space's class: a user's space that provides its
latency layers gets the latency model, one that lacks a capability is refused in one line naming
it, and no module of the package probes a protocol member by name."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from nas_gym.config import ConfigError, load_config
from nas_gym.envs.nas_env import NasEnv
from nas_gym.execution.backends import Backend
from nas_gym.latency.layers import layers_for
from nas_gym.latency.model import LatencyTable
from nas_gym.latency.profile import profile
from nas_gym.preflight import preflight
from nas_gym.spaces import base as space_base
from nas_gym.spaces import capabilities
from nas_gym.spaces.capabilities import BuildsSupernet, CountsParams, ProvidesLatencyLayers

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mlp_space.py"

# The example MLP space, plus the one method the latency model asks for: each hidden layer is
# a key of its own (its width and input size), then the head.
USER_SPACE = f'''
import math

from nas_gym.spaces import resolve_space
from nas_gym.spaces.capabilities import key_shape, layer_key

MLPSpace = resolve_space("{EXAMPLE}:MLPSpace")


class MLPLayers:
    def __init__(self, space, input_shape, num_classes):
        self.space, self.input_shape, self.num_classes = space, tuple(input_shape), num_classes

    def keys(self, arch):
        shape, out = self.input_shape, []
        for width in arch.widths:
            out.append(layer_key(f"linear{{width}}", shape))
            shape = (width,)
        return out + [layer_key("head", shape)]

    def all_keys(self):
        return sorted({{k for arch in self.space.enumerate() for k in self.keys(arch)}})

    def build(self, key):
        from torch import nn

        layer, shape = key.rpartition("@")[0], key_shape(key)
        width = self.num_classes if layer == "head" else int(layer.removeprefix("linear"))
        return nn.Sequential(nn.Flatten(1), nn.Linear(math.prod(shape), width))


class TimedMLPSpace(MLPSpace):
    def latency_layers(self, input_shape, num_classes):
        return MLPLayers(self, input_shape, num_classes)
'''


@pytest.mark.parametrize("preset", ["mnist1d-tiny", "mnist1d-cell"])
def test_builtin_spaces_declare_their_capabilities(preset):
    space = load_config(preset).search_space()
    assert isinstance(space, BuildsSupernet) and isinstance(space, ProvidesLatencyLayers)
    assert isinstance(space.latency_layers((1, 40), 10), capabilities.LatencyLayers)
    assert isinstance(space, CountsParams) == (preset == "mnist1d-tiny")  # the cell counts with torch only


def test_example_space_declares_none(monkeypatch):
    monkeypatch.chdir(ROOT)
    space = load_config(ROOT / "examples" / "mlp_space.yaml").search_space()
    assert not isinstance(space, CountsParams | BuildsSupernet | ProvidesLatencyLayers)
    with pytest.raises(ValueError, match="needs a space with latency_layers.*which 'mlp' lacks"):
        layers_for(space, (1, 40), 10)


def test_supernet_evaluator_refuses_a_space_without_a_supernet(monkeypatch):
    from nas_gym.evaluators.supernet import SupernetEvaluator

    monkeypatch.chdir(ROOT)
    config = load_config(ROOT / "examples" / "mlp_space.yaml", {"evaluator.kind": "supernet"})
    with pytest.raises(ConfigError, match="space 'examples/mlp_space.py:MLPSpace' has no build_supernet") as err:
        SupernetEvaluator(config)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_user_space_with_latency_layers_gets_the_latency_model(tmp_path):
    """Profiled, checked before the run and rewarded by predicted latency, with no change to
    nas-gym: the env's cost is the table's prediction, the sum of the layers' times on the line."""
    (tmp_path / "timed_mlp.py").write_text(USER_SPACE)
    preset = tmp_path / "timed.yaml"
    preset.write_text(f"name: timed-mlp\nspace:\n  kind: {tmp_path / 'timed_mlp.py'}:TimedMLPSpace\n"
                      "  widths: [8, 32]\n  max_layers: 2\ndata:\n  name: mnist1d\n")
    config = load_config(preset)
    table = profile(config, repeats=2, warmup=1, fit_archs=3)
    space = config.search_space()
    used = {key for arch in space.enumerate() for key in table.layers.keys(arch)}
    assert used == set(table.entries) and "linear32@1x40" in used and "head@8" in used
    path = tmp_path / "table.json"
    table.save(path)

    timed = load_config(preset, {"reward.cost": "latency_model", "reward.kind": "mnas", "reward.target": 0.1,
                                 "reward.latency_table": str(path), "evaluator.cache": None})
    preflight(timed)  # the table fits this machine and this space: no error
    env = NasEnv(timed, evaluator="synthetic", seed=0)
    arch = space.sample(np.random.default_rng(3))
    env.reset(seed=0)
    for action in space.actions_of(arch):
        _, _, done, _, info = env.step(action)
    env.close()
    loaded = LatencyTable.load(path)
    expected = loaded.scale * sum(loaded.entries[k] for k in loaded.layers.keys(arch)) + loaded.intercept_ms
    assert done and math.isclose(info["cost"], expected, rel_tol=1e-12)


def _protocol_members() -> set[str]:
    """Every method or attribute the space and backend protocols declare."""
    protocols = [space_base.SearchSpace, Backend, capabilities.CountsParams, capabilities.BuildsSupernet,
                 capabilities.ProvidesLatencyLayers, capabilities.LatencyLayers]
    return {name for p in protocols for name in [*vars(p), *getattr(p, "__annotations__", {})]
            if not name.startswith("_")}


def test_no_module_probes_a_space_or_backend_member_by_name():
    members = _protocol_members()
    assert {"count_params", "build_supernet", "latency_layers", "with_config"} <= members
    probes = []
    for path in sorted((ROOT / "nas_gym").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr")
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and node.args[1].value in members):
                probes.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.id}(..., {node.args[1].value!r})")
    assert not probes, probes
