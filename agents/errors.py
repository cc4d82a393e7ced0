"""The agents' one error class, alone so that every agents module (the base, the context, the
hyperparameter files) can raise it without importing each other."""

from __future__ import annotations

from nas_gym.errors import NasGymError


class AgentError(NasGymError, ValueError):
    """An agent name that cannot be resolved, or hyperparameters it does not take."""
