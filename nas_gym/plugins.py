"""The one loader for everything a user plugs in: agents, search spaces, datasets, the worker hook.

Every kind is named the same three ways, so what works for one works for all:

- ``package.module:Name``: imported like any module (``Name`` may be dotted: ``Outer.Inner``);
- ``path/to/file.py:Name``: a file that is not installed, loaded once per process under a
  private module name (registered in ``sys.modules``, so pydantic models and pickles in it resolve);
- an entry-point name: a package installed beside nas-gym declares it in its own
  ``pyproject.toml`` (``[project.entry-points."nas_gym.agents"] my-agent = "pkg.mod:MyAgent"``),
  in the group of its kind (:data:`GROUPS`); nothing in nas-gym has to change.

Failures are one line naming the spec and what to give instead, raised as the caller's error
class (``AgentError``, ``SpaceError``...), so each command keeps reporting its own kind of mistake.
This module imports only the standard library, so every layer may use it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from nas_gym.errors import NasGymError

GROUPS: dict[str, str] = {
    "agent": "nas_gym.agents",
    "space": "nas_gym.spaces",
    "dataset": "nas_gym.datasets",
}
"""Entry-point group of each kind that third-party packages may extend."""

FORMS = "module.path:Name or path/to/file.py:Name"


class PluginError(NasGymError, ValueError):
    """A plug-in spec that names nothing loadable; raised when the caller names no error class of its own."""


def entry_point_names(kind: str) -> list[str]:
    """Names installed packages declare in ``kind``'s entry-point group (sorted; none for a kind without one)."""
    group = GROUPS.get(kind)
    return sorted({ep.name for ep in entry_points(group=group)}) if group else []


def names(kind: str, builtins: Mapping[str, str] | None = None) -> list[str]:
    """Every name ``kind`` can be given by: built-ins and installed entry points."""
    return sorted(set(builtins or {}) | set(entry_point_names(kind)))


def load(spec: str, kind: str, builtins: Mapping[str, str] | None = None,
         error: type[Exception] = PluginError, label: str | None = None) -> Any:
    """What ``spec`` names: a built-in name (mapped to its ``module:Name`` in ``builtins``), an
    entry-point name of ``kind``'s group, ``module.path:Name`` or ``path/to/file.py:Name``.

    :param kind: what is loaded (``agent``, ``space``, ``dataset``, ``worker hook``): picks the
        entry-point group and names the thing in messages.
    :param label: how messages name an unknown ``spec`` (default ``kind``; spaces say ``space kind``).
    :raises error: one line naming ``spec`` and what is accepted.
    """
    if builtins and spec in builtins:
        return load_target(builtins[spec], kind, error)
    group = GROUPS.get(kind)
    if group is not None:
        for ep in entry_points(group=group):
            if ep.name == spec:
                try:
                    return ep.load()
                except Exception as e:  # the declaring package is broken: say which, not a traceback
                    raise error(f"{kind} {spec!r}: entry point {ep.value!r} of group {group} cannot be loaded "
                                f"({type(e).__name__}: {_one_line(e)}); fix or reinstall the package declaring it") from None
    if ":" in spec:
        return load_target(spec, kind, error)
    known = names(kind, builtins)
    choose = f"choose one of {', '.join(known)} or give " if known else "give "
    raise error(f"unknown {label or kind} {spec!r}; {choose}{FORMS}")


def load_target(spec: str, kind: str, error: type[Exception] = PluginError) -> Any:
    """What ``module.path:Name`` or ``path/to/file.py:Name`` names (no built-in or entry-point lookup).

    :raises error: one line naming ``spec``: bad form, missing file, failed import, missing name.
    """
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise error(f"{kind} {spec!r} is not of the form {FORMS}")
    if where.endswith(".py"):
        module = _load_file(Path(where), kind, spec, error)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            raise error(f"{kind} {spec!r}: cannot import {where!r} ({_one_line(e)}); give an importable "
                        f"{FORMS}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise error(f"{kind} {spec!r}: {where} has no {attr!r}; check the name after the colon") from None
    return obj


def _load_file(path: Path, kind: str, spec: str, error: type[Exception]) -> Any:
    """The module of a ``.py`` file, executed once per process (the same file twice gives the
    same classes, as an import would)."""
    if not path.is_file():
        raise error(f"{kind} file {path} does not exist (in {spec!r}); give an existing file.py:Name or module.path:Name")
    resolved = path.resolve()
    name = f"nas_gym_user_{kind.replace(' ', '_')}_{path.stem}"
    module = sys.modules.get(name)
    if module is not None and module.__dict__.get("__file__") == str(resolved):
        return module
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise error(f"{kind} {spec!r}: {path} cannot be loaded as Python; give a .py file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # pydantic resolves a model's annotations through it
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise error(f"{kind} {spec!r}: running {path} failed ({type(e).__name__}: {_one_line(e)}); fix the file") from None
    return module


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200]
