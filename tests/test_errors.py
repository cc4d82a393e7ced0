"""Every error class nas-gym defines shares one base, so a caller (the CLI first) can catch
"nas-gym refused this" with one name; the list is computed by importing every module of the
package and the agents, so a new error class cannot forget the base unnoticed."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import nas_gym
import nas_gym.agents
from nas_gym.errors import NasGymError

# Exceptions used as signals, not as errors: control flow a caller is meant to raise or let through.
SIGNALS = {
    "nas_gym.runs.search.StopSearch",
    "nas_gym.runs.surrogate_build.Missing",  # an --export-only replay stops where the cache does
    "nas_gym.agents.optuna_proposals.ProposalsExhausted",  # a library with nothing left to propose: the driver draws instead
}


def _defined_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for package in (nas_gym, nas_gym.agents):
        names = [package.__name__] + [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
        for name in names:
            module = importlib.import_module(name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if obj.__module__ == name and issubclass(obj, Exception):
                    found.append(obj)
    return found


def test_walk_finds_the_known_errors() -> None:
    names = {cls.__name__ for cls in _defined_exceptions()}
    assert {"ConfigError", "ArchitectureError", "AgentError", "DatasetError", "RunLogError", "CacheError"} <= names


@pytest.mark.parametrize("cls", _defined_exceptions(), ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_error_is_a_nas_gym_error(cls: type[BaseException]) -> None:
    if f"{cls.__module__}.{cls.__qualname__}" in SIGNALS:
        pytest.skip("a control-flow signal, not an error")
    assert issubclass(cls, NasGymError), f"{cls.__module__}.{cls.__qualname__} does not subclass NasGymError"


def test_old_bases_still_catch() -> None:
    from nas_gym.config import ConfigError
    from nas_gym.training.numerics import DeviceLostError

    assert issubclass(ConfigError, ValueError)
    assert issubclass(DeviceLostError, RuntimeError)
