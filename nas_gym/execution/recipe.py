"""What travels from the driver to a worker with each task, shared by the process pool, the Ray
actors and the worker side. Torch-free, so the driver can import it without loading torch."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from nas_gym.config import Config


@dataclass(frozen=True)
class Recipe:
    """A task's training settings as they travel to a worker: the config, and the key under
    which the worker keeps what it set up for it (so a config is validated and its data loaded
    once per worker, not once per task)."""

    key: str
    config: dict[str, Any]

    @classmethod
    def of(cls, config: Config) -> Recipe:
        dumped = config.model_dump(mode="json")
        return cls(hashlib.sha256(json.dumps(dumped, sort_keys=True).encode()).hexdigest()[:20], dumped)
