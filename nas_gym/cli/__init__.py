"""The ``nas-gym`` command, one module per command (``evaluate``, ``search``, ``compare``,
``leaderboard``, ``retrain``, ``latency``), what they share in ``common`` and the application
that registers them in ``main``. The top layer: nothing in the package imports it."""

from nas_gym.cli.main import app

__all__ = ["app"]
