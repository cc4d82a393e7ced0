"""Checks a config needs before anything trains, beyond what its fields say: files it names,
optional packages and this machine.

``nas_gym.config`` is declarative: loading a preset reads no file it names and imports no torch,
so presets can be loaded, listed, merged and compared anywhere (an agent's process, a tool that
only reads run folders). What depends on the world outside the YAML runs here, where a search or
an env starts (``run_search``, ``NasEnv``, ``NasVecEnv``), before a run folder is made or a
worker started: a missing or foreign latency table, or a backend whose package is not installed,
stops the run at once rather than at its first reward or its first batch. A command also asks
for the setup checks (``setup=True``: device, GPUs, cache file, data), which load the data once
more, so the env, which loads it anyway, skips them.
"""

from __future__ import annotations

from nas_gym.config import Config, ConfigError
from nas_gym.evaluator_kinds import lookup
from nas_gym.extras import MissingExtraError, check_installed


def preflight(config: Config, *, setup: bool = False) -> None:
    """Check what ``config`` needs of files, packages and this machine.

    :param setup: also the device, the GPUs, the cache file and the data
        (``nas_gym.evaluators.training.check_setup``; imports torch and loads the data).
    :raises ConfigError, CacheError, DatasetError: one line naming the field and the fix.
    """
    _extras_installed(config)
    _latency_table_fits(config)
    _benchmark_table_fits(config)
    if setup:
        from nas_gym.evaluators.training import check_setup

        check_setup(config)


def _extras_installed(config: Config) -> None:
    if config.evaluator.backend == "ray" and "backend" in lookup(config.evaluator.kind).options:
        try:
            check_installed("ray", "evaluator.backend 'ray'", "use backend 'process'")
        except MissingExtraError as e:
            raise ConfigError(str(e)) from None


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


def _benchmark_table_fits(config: Config) -> None:
    # A table evaluator's file (the shipped one, or ``evaluator.table_file``) is found and its
    # header checked against the preset before a run folder exists; its rows load with the evaluator.
    if "table_file" not in lookup(config.evaluator.kind).options:
        return
    from nas_gym.benchmarks.table_file import read_header
    from nas_gym.evaluators.table import find_table, mismatch

    path = config.evaluator.table_file or find_table(config)
    problem = mismatch(read_header(path), config)
    if problem:
        field = "evaluator.table_file: " if config.evaluator.table_file else ""
        raise ConfigError(f"{field}table {path} does not fit config {config.name!r}: {problem}; "
                          "use the preset it was built for or build a table with scripts/build_table.py")
