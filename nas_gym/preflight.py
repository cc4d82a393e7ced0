"""Checks a config needs before anything trains, beyond what its fields say: files it names and
this machine.

``nas_gym.config`` is declarative: loading a preset reads no file it names and imports no torch,
so presets can be loaded, listed, merged and compared anywhere (an agent's process, a tool that
only reads run folders). What depends on the world outside the YAML runs here, once, where a
search or an env starts (``run_search``, ``NasEnv``, ``NasVecEnv``), before a run folder is made
or a worker started: a missing or foreign latency table stops the run at once rather than at
its first reward.
"""

from __future__ import annotations

from nas_gym.config import Config, ConfigError


def preflight(config: Config) -> None:
    """Check what ``config`` needs of files and of this machine.

    :raises ConfigError: one line naming the field and the fix.
    """
    _latency_table_fits(config)


def _latency_table_fits(config: Config) -> None:
    # A missing table, or one measured on another machine or for another preset, would give
    # confidently wrong rewards; a space the latency model cannot cut up would fail at the first one.
    if config.reward.cost != "latency_model":
        return
    from nas_gym.latency.model import preset_identity, verified_table

    identity = preset_identity(config.space, config.input_shape, config.num_classes)
    try:
        verified_table(config.reward.latency_table, identity, config.runtime.device, config.name)
    except ConfigError:
        raise
    except ValueError as e:  # LatencyTableError or a space without latency layers name their field
        field = "" if str(e).startswith("reward.") else "runtime.device: "  # resolve_device's messages do not
        raise ConfigError(f"config {config.name!r}: {field}{e}") from None
