"""Ray and scikit-learn are extras: without them (simulated by hiding the module), each feature
that needs one stops with one line naming ``pip install 'nas-gym[<extra>]'``, the CLI exits 2
with that line, and the ``dev`` extra the README's commands install still brings every extra."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nas_gym.cli import app
from nas_gym.config import ConfigError, load_config
from nas_gym.extras import EXTRAS, MissingExtraError, require

ROOT = Path(__file__).resolve().parent.parent


def hide(monkeypatch, *modules: str) -> None:
    """Make ``import <module>`` fail as if it were not installed (and forget what was imported)."""
    for name in list(sys.modules):
        if name.partition(".")[0] in modules:
            monkeypatch.delitem(sys.modules, name)
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def one_line(error: BaseException, extra: str) -> str:
    message = str(error)
    assert "\n" not in message and f"pip install 'nas-gym[{extra}]'" in message
    return message


def test_digits_without_scikit_learn(monkeypatch):
    from nas_gym.data import load_dataset

    config = load_config("digits")  # the config itself needs nothing optional
    hide(monkeypatch, "sklearn")
    with pytest.raises(MissingExtraError) as err:
        load_dataset(config.data)
    assert one_line(err.value, "sklearn").startswith("data.name 'digits' needs the optional dependency scikit-learn")


def test_fitting_a_surrogate_without_scikit_learn(monkeypatch):
    from nas_gym.surrogates.fit import fit_members

    hide(monkeypatch, "sklearn", "threadpoolctl")
    with pytest.raises(MissingExtraError) as err:
        fit_members(np.zeros((4, 2)), np.zeros(4), members=1, seed=0)
    assert one_line(err.value, "sklearn").startswith("fitting a surrogate needs the optional dependency scikit-learn")


def test_ray_backend_without_ray(monkeypatch):
    from nas_gym.execution.backends import parallel_backend

    hide(monkeypatch, "ray", "nas_gym.execution.ray")
    with pytest.raises(ConfigError) as err:
        parallel_backend(load_config("mnist1d-tiny", {"evaluator.backend": "ray"}))
    message = one_line(err.value, "ray")
    assert message.startswith("evaluator.backend 'ray' needs the optional dependency ray")
    assert message.endswith("or use backend 'process'")


def test_cli_search_on_ray_without_ray_exits_2_with_one_line(monkeypatch, tmp_path):
    hide(monkeypatch, "ray", "nas_gym.execution.ray")
    result = CliRunner().invoke(app, ["search", "--config", "mnist1d-tiny", "--agent", "random", "--episodes", "2",
                                      "--logdir", str(tmp_path / "runs"), "--set", "evaluator.backend=ray"])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert "pip install 'nas-gym[ray]'" in line and not (tmp_path / "runs").exists()


def test_an_installed_extra_is_imported():
    assert require("numpy", "a test") is np  # the helper returns the module when it is there


def test_every_extra_named_in_an_error_exists_and_dev_installs_it():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    core = " ".join(project["dependencies"])
    for module, (dist, extra) in EXTRAS.items():
        assert any(req.startswith(dist) for req in extras[extra]), module
        assert any(req.startswith(dist) for req in extras["dev"]), f"dev lacks {dist}"
        assert dist not in core, f"{dist} is still a core dependency"
    assert set(extras["all"]) <= set(extras["dev"])
