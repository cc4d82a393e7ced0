"""The header of a table: everything needed to tell whether it still describes what training
would give today (preset, trainer hashes per seed, trainer version, library versions)."""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np

from nas_gym import __version__
from nas_gym.benchmarks.table_file import FORMAT, FORMAT_VERSION
from nas_gym.config import Config, RuntimeConfig, load_config
from nas_gym.results import TRAINER_VERSION

RUNTIME = RuntimeConfig(device="cpu", threads=1)


def seed_configs(config: Config, seeds: Sequence[int]) -> dict[int, Config]:
    """The preset with ``train.seed`` set to each seed, validated like any override."""
    return {s: load_config(config, {"train.seed": int(s)}) for s in seeds}



def make_header(config: Config, seeds: Sequence[int], rows: Sequence[dict], workers: int) -> dict[str, Any]:
    """Everything needed to tell whether a table still describes what training would give today."""
    import torch

    from nas_gym.training.device import resolve_device
    from nas_gym.training.numerics import numerics_identity

    configs = seed_configs(config, seeds)
    statuses = [s for r in rows for s in r["status"]]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "preset": config.name,
        "config": config.model_dump(mode="json"),
        "seeds": [int(s) for s in seeds],
        "context_hashes": {str(s): c.context_hash() for s, c in configs.items()},
        "trainer_version": TRAINER_VERSION,
        # What else decides the numbers (empty: CPU, fp32; see nas_gym.training.numerics.numerics_identity).
        "numerics": numerics_identity(RUNTIME, resolve_device(RUNTIME.device)),
        "space_size": len(rows),
        "status_counts": {k: statuses.count(k) for k in sorted(set(statuses))},
        "train_seconds_total": round(sum(x or 0.0 for r in rows for x in r["train_seconds"]), 1),
        "runtime": {"device": RUNTIME.device, "threads_per_worker": RUNTIME.threads, "workers": workers},
        "clock": "train_seconds are the worker's CPU seconds per evaluation (one torch thread), immune to other load",
        "machine": {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "versions": {"nas_gym": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


