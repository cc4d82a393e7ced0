"""The backend protocol, and which parallel backend a config names, started on request.

Its own module, below both the package ``__init__`` and the training evaluator, so the training
evaluator can start a backend without importing its own package's ``__init__`` (which imports the
evaluators that import it: a cycle). Imports no torch (Ray imports itself).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from nas_gym.config import Config, ConfigError
from nas_gym.extras import MissingExtraError, require
from nas_gym.results import EvalResult
from nas_gym.spaces.base import Architecture

OnResult = Callable[[int, EvalResult], None]


@runtime_checkable
class Backend(Protocol):
    """Computes a batch of architectures; never writes the cache, never charges the budget.

    ``run`` returns results aligned with ``archs``. A training failure (and, for the parallel
    backends, a crashed worker) is a failed ``EvalResult``, not an exception: one bad
    architecture must not end a search. Only setup errors (no such device, no dataset) raise.
    When given, ``on_result(i, result)`` is called in the caller's thread as each result
    arrives, so the caller can store it at once and a crash mid-batch loses nothing finished.

    ``with_config(config)`` is a backend that trains ``config``'s recipe (data, trainer, space)
    on the same resources: a pool's same workers, so one pool serves several evaluators (the two
    fidelities of a multi-fidelity search, a table build's seeds); ``BackendBase`` gives the
    default of a backend bound to one recipe, itself.
    """

    def run(self, archs: Sequence[Architecture], on_result: OnResult | None = None) -> list[EvalResult]: ...

    def close(self) -> None: ...

    def with_config(self, config: Config) -> Backend: ...


class BackendBase:
    """Defaults for a backend: ``with_config`` returns the backend itself (it computes what it was
    made for, whatever the evaluator's config: a test's fake, a lookup), ``close`` does nothing."""

    def with_config(self, config: Config) -> Backend:
        return self  # type: ignore[return-value]

    def close(self) -> None:
        pass


def parallel_backend(config: Config) -> Backend | None:
    """The process pool or Ray actors ``config.evaluator.backend`` names, started now; None for ``serial``.

    :raises ConfigError: ``ray`` is asked for but not installed.
    """
    if config.evaluator.backend == "process":
        from nas_gym.execution.parallel import ProcessBackend

        return ProcessBackend(config)
    if config.evaluator.backend == "ray":
        try:
            require("ray", "evaluator.backend 'ray'", "use backend 'process'")
        except MissingExtraError as e:
            raise ConfigError(str(e)) from None
        from nas_gym.execution.ray import RayBackend

        return RayBackend(config)
    return None
