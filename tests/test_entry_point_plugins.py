"""A third-party package declares a search space (``nas_gym.spaces``) and a dataset
(``nas_gym.datasets``) through entry points, and ``nas-gym search`` uses them by name, with
nothing registered in nas-gym: the same path as ``tests/test_entry_point_agent.py`` for agents."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _throwaway_package(root: Path) -> None:
    """What ``pip install`` of a package declaring both groups leaves on the path: the module
    (the example MLP space's source, and a dataset that is a renamed copy of the digits) and a
    ``.dist-info`` whose ``entry_points.txt`` names them."""
    pkg = root / "extras_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "space.py").write_text((ROOT / "examples" / "mlp_space.py").read_text())
    (pkg / "data.py").write_text(textwrap.dedent('''
        from pathlib import Path

        from nas_gym.data import DatasetSpec

        SPEC = DatasetSpec("extras_pkg.data:load", (1, 8, 8), 10)


        def load(cfg):
            from nas_gym.data.digits import load as digits

            Path(cfg.root, "loaded").write_text(cfg.name)  # proof that this loader ran
            return digits(cfg)
    '''))
    info = root / "extras_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extras-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nas_gym.spaces]\nmlp = extras_pkg.space:MLPSpace\n\n"
                                           "[nas_gym.datasets]\nmy-digits = extras_pkg.data:SPEC\n")


def _search(tmp_path: Path, preset: dict, evaluator: str) -> subprocess.CompletedProcess:
    _throwaway_package(tmp_path)
    config = tmp_path / "preset.yaml"
    config.write_text(yaml.safe_dump(preset))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "NAS_GYM_CACHE": str(tmp_path / "cache.sqlite")}
    return subprocess.run([sys.executable, "-m", "nas_gym.cli", "search", "--agent", "random", "--config", str(config),
                           "--evaluator", evaluator, "--episodes", "3", "--logdir", str(tmp_path / "runs")],
                          capture_output=True, text=True, env=env, timeout=300)


def _rows(tmp_path: Path) -> list[dict[str, str]]:
    (run,) = (tmp_path / "runs").iterdir()
    return list(csv.DictReader((run / "evaluations.csv").open()))


def test_a_space_from_an_entry_point_runs_a_search(tmp_path):
    preset = {"name": "ep-space", "space": {"kind": "mlp", "widths": [16, 64], "max_layers": 2},
              "data": {"name": "mnist1d"}, "train": {"epochs": 1}}
    out = _search(tmp_path, preset, "synthetic")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = _rows(tmp_path)
    assert len(rows) == 3 and all(r["arch"].startswith("mlp-") for r in rows)


def test_a_dataset_from_an_entry_point_trains_in_a_search(tmp_path):
    (tmp_path / "data").mkdir()
    preset = {"name": "ep-data", "space": {"ops": ["conv3-16", "maxpool"], "max_depth": 2},
              "data": {"name": "my-digits", "root": str(tmp_path / "data")},
              "train": {"epochs": 1, "batch_size": 64}}
    out = _search(tmp_path, preset, "train")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "data" / "loaded").read_text() == "my-digits"
    rows = _rows(tmp_path)
    assert len(rows) == 3 and all(0.0 <= float(r["val_acc"]) <= 1.0 for r in rows)
