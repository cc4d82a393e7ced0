"""Making the env imports no RL library, no Ray and no scikit-learn: a user who only wants the env
(``pip install nas-gym``, a table evaluator) pays neither their import time nor their install.
Run in a fresh interpreter, since this test process has imported them all already."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("stable_baselines3", "ray", "sklearn")
SCRIPT = """
import sys
import gymnasium
import nas_gym
env = gymnasium.make({env_id!r}, evaluator="table")
env.reset(seed=0)
print(" ".join(sorted({{m.split(".")[0] for m in sys.modules}})))
"""


@pytest.mark.parametrize("env_id", ["NasGym/Cell-v0"])
def test_making_the_env_imports_no_heavy_library(env_id: str) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(env_id=env_id)], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "nas_gym" in loaded and "gymnasium" in loaded
    assert not loaded & set(HEAVY), f"imported at env creation: {sorted(loaded & set(HEAVY))}"
