"""A third-party package declares an agent through the ``nas_gym.agents`` entry point group, and
``nas-gym search --agent <its name>`` finds and runs it, with nothing registered in nas-gym."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _throwaway_package(root: Path) -> None:
    """What ``pip install`` of a package with ``[project.entry-points."nas_gym.agents"]`` leaves on
    the path: the module and a ``.dist-info`` whose ``entry_points.txt`` names the class."""
    (root / "walker_pkg").mkdir()
    (root / "walker_pkg" / "__init__.py").write_text(textwrap.dedent('''
        import numpy as np
        from nas_gym.agents.base import play


        class RandomWalker:
            """Plays a random architecture each episode."""

            def __init__(self, env, seed=0, hparams=None, logdir=None):
                self.env, self.rng = env, np.random.default_rng(seed)

            def learn(self, episodes):
                for _ in range(episodes):
                    play(self.env, self.env.unwrapped.space.sample(self.rng))
    '''))
    info = root / "walker_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: walker-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nas_gym.agents]\nwalker = walker_pkg:RandomWalker\n")


def test_an_agent_from_an_entry_point_runs_a_search(tmp_path):
    _throwaway_package(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "nas_gym.cli", "search", "--agent", "walker", "--config", "mnist1d-tiny",
                          "--evaluator", "table", "--episodes", "6", "--logdir", str(tmp_path / "runs")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("walker-mnist1d-tiny-table-s0-")
    rows = (runs[0] / "evaluations.csv").read_text().splitlines()
    assert len(rows) == 1 + 6
