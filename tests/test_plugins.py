"""The one plug-in loader (``nas_gym.plugins``): every form of spec it accepts loads the named
object, and every bad one is a single line naming the spec and what to give instead, raised as
the caller's error class."""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path

import pytest

from nas_gym import plugins
from nas_gym.agents.base import AgentError, resolve_agent
from nas_gym.errors import NasGymError
from nas_gym.spaces import SpaceError, resolve_space


def _one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


def test_module_spec_loads_the_named_object():
    assert plugins.load_target("nas_gym.plugins:PluginError", "agent") is plugins.PluginError
    assert plugins.load_target("nas_gym.plugins:PluginError.__name__", "agent") == "PluginError"  # dotted names


def test_builtin_names_map_to_their_spec():
    from nas_gym.agents.random_search import RandomSearch

    assert resolve_agent("random") is RandomSearch
    assert plugins.load("x", "agent", {"x": "nas_gym.agents.random_search:RandomSearch"}) is RandomSearch


@pytest.mark.parametrize("spec, says", [
    ("no_such_module_xyz:Thing", "cannot import 'no_such_module_xyz'"),
    ("nas_gym.plugins:NoSuchThing", "nas_gym.plugins has no 'NoSuchThing'"),
    ("nas_gym.plugins:", "is not of the form module.path:Name"),
    ("nowhere/missing.py:Cls", "agent file nowhere/missing.py does not exist"),
], ids=["bad-module", "bad-attr", "no-attr", "missing-file"])
def test_a_bad_spec_is_one_line_naming_it(spec, says):
    with pytest.raises(AgentError) as e:
        resolve_agent(spec)
    text = _one_line(e)
    assert says in text and repr(spec) in text


def test_an_unknown_name_lists_the_choices():
    with pytest.raises(AgentError) as e:
        resolve_agent("nope")
    text = _one_line(e)
    assert text.startswith("unknown agent 'nope'; choose one of ") and "random" in text and "file.py:Name" in text


def test_the_caller_picks_the_error_class():
    with pytest.raises(SpaceError, match="unknown space kind 'hexagon'"):
        resolve_space("hexagon")
    with pytest.raises(plugins.PluginError) as e:
        plugins.load("nope", "dataset")
    assert isinstance(e.value, NasGymError) and isinstance(e.value, ValueError)


def test_a_file_spec_loads_once_per_process(tmp_path: Path):
    path = tmp_path / "my_agent.py"
    path.write_text(textwrap.dedent('''
        LOADS = []
        LOADS.append(1)


        class Mine:
            pass
    '''))
    first = plugins.load_target(f"{path}:Mine", "agent")
    second = plugins.load_target(f"{path}:Mine", "agent")
    assert first is second and first.__name__ == "Mine"
    assert importlib.import_module(first.__module__).LOADS == [1]  # registered, and run once


def test_a_file_that_fails_to_run_is_one_line(tmp_path: Path):
    path = tmp_path / "broken.py"
    path.write_text("raise RuntimeError('boom\\nsecond line')\n")
    with pytest.raises(SpaceError) as e:
        resolve_space(f"{path}:Space")
    text = _one_line(e)
    assert f"{path}:Space" in text and "RuntimeError: boom second line" in text and "fix the file" in text


def _dist_info(root: Path, group: str, name: str, target: str) -> None:
    info = root / "plug_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plug-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {target}\n")


def test_an_entry_point_name_loads_its_target(tmp_path: Path, monkeypatch):
    (tmp_path / "plug_pkg.py").write_text("class Walker:\n    pass\n")
    _dist_info(tmp_path, "nas_gym.agents", "walker", "plug_pkg:Walker")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    cls = resolve_agent("walker")
    assert cls.__name__ == "Walker" and cls.__module__ == "plug_pkg"
    assert "walker" in plugins.names("agent") and "walker" not in plugins.names("space")


def test_a_broken_entry_point_names_its_package(tmp_path: Path, monkeypatch):
    _dist_info(tmp_path, "nas_gym.spaces", "ghost", "ghost_pkg_missing:Space")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    with pytest.raises(SpaceError) as e:
        resolve_space("ghost")
    text = _one_line(e)
    assert "'ghost_pkg_missing:Space' of group nas_gym.spaces cannot be loaded" in text and "reinstall" in text
