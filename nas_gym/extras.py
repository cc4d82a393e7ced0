"""Optional dependencies: imported where a feature needs them, with one line naming the extra.

``pip install nas-gym`` stays small: Ray (the ``ray`` backend) and scikit-learn (the ``digits``
dataset, fitting a surrogate) are extras, and the env, the tables and the shipped surrogate run
without them. A feature that needs one calls ``require`` at the point of use, so its absence
costs nothing until then and then says exactly what to install.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from nas_gym.errors import NasGymError

# import name -> (the distribution that provides it, the nas-gym extra that installs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "ray": ("ray", "ray"),
    "sklearn": ("scikit-learn", "sklearn"),
    "threadpoolctl": ("scikit-learn", "sklearn"),  # installed with scikit-learn, used to pin its threads
}


class MissingExtraError(NasGymError, ImportError):
    """An optional dependency a feature needs is not installed; the message names the extra."""


def require(module: str, feature: str, alternative: str = "") -> ModuleType:
    """``module`` imported, or one line saying which extra ``feature`` needs.

    :param module: the import name (``sklearn.datasets``); its top-level package picks the extra.
    :param feature: the field or command at fault, e.g. ``data.name 'digits'``.
    :param alternative: what to do instead, appended as ``or <alternative>``.
    :raises MissingExtraError: the package is missing (or its import fails).
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise _missing(module, feature, alternative) from None


def check_installed(module: str, feature: str, alternative: str = "") -> None:
    """Raise what ``require`` would, without importing ``module`` (Ray takes seconds): for a
    preflight, before a run folder exists or a worker starts.

    :raises MissingExtraError: the package is not installed.
    """
    top = module.partition(".")[0]
    found = sys.modules[top] is not None if top in sys.modules else importlib.util.find_spec(top) is not None
    if not found:
        raise _missing(module, feature, alternative)


def _missing(module: str, feature: str, alternative: str) -> MissingExtraError:
    dist, extra = EXTRAS[module.partition(".")[0]]
    other = f", or {alternative}" if alternative else ""
    return MissingExtraError(f"{feature} needs the optional dependency {dist}, which cannot be imported here; "
                             f"install it with pip install 'nas-gym[{extra}]'{other}")
