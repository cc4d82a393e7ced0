"""Files a user did not write cannot run code (issue 24, defects 1 and 2).

Each attack plants a payload that, if executed, creates a marker file: a pickle whose
``__reduce__`` opens the marker for writing, or a Python file named by ``space.kind``. The
resume or retrain must refuse the folder in one line naming the file (exit code 2), leave the
folder as it was, and never create the marker; with ``--trust-run-folder`` the resume runs, and
still no payload runs, because nothing in a checkpoint is unpickled any more.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import stat
import zipfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nas_gym.cli import app
from nas_gym.config import load_config
from nas_gym.runs.checkpoint import MANIFEST, read_manifest
from nas_gym.runs.search import SearchInterrupted, run_search
from nas_gym.storage import trust

runner = CliRunner()
OVERRIDES = {"evaluator.kind": "synthetic"}


class _Payload:
    """Unpickling it creates ``marker``: proof that a file's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def stopped_run(logdir: Path, agent: str, episodes: int = 8, stop_at: int = 6) -> Path:
    """A run of ``agent`` stopped by Ctrl-C after a checkpoint, so a resume loads it."""
    def stop(log) -> None:
        if log.episodes == stop_at:
            raise KeyboardInterrupt

    try:
        run_search(load_config("mnist1d-tiny", OVERRIDES), agent, episodes, 0, logdir, on_episode=stop,
                   checkpoint_every=2, argv=["nas-gym", "search"])
    except SearchInterrupted as e:
        assert read_manifest(e.run_dir).checkpoint is not None
        return e.run_dir
    raise AssertionError("the run was not stopped")


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def resume(run_dir: Path, *extra: str):
    return runner.invoke(app, ["search", "--resume", str(run_dir), *extra])


def one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("agent, planted", [("ppo", "agent.rng.pkl"), ("dqn", "agent.replay.pkl")])
def test_a_pickle_planted_in_a_checkpoint_never_runs(tmp_path, agent, planted):
    run_dir = stopped_run(tmp_path / "runs", agent)
    marker = tmp_path / "pwned"
    folder = run_dir / read_manifest(run_dir).checkpoint
    (folder / planted).write_bytes(pickle.dumps(_Payload(marker)))
    before = files_of(run_dir)

    one_line_error(resume(run_dir), planted, "not written by nas-gym", "--trust-run-folder")
    assert files_of(run_dir) == before and not marker.exists()

    result = resume(run_dir, "--trust-run-folder")  # trusted: the resume runs, and no pickle is read
    assert result.exit_code == 0, result.output
    assert "Resumed after episode" in result.output and not marker.exists()


def test_a_pickled_entry_swapped_into_the_sb3_archive_never_runs(tmp_path):
    run_dir = stopped_run(tmp_path / "runs", "ppo")
    marker = tmp_path / "pwned"
    archive = run_dir / read_manifest(run_dir).checkpoint / "agent.zip"
    with zipfile.ZipFile(archive) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    data = json.loads(entries["data"])
    data["lr_schedule"][":serialized:"] = base64.b64encode(pickle.dumps(_Payload(marker))).decode()
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(archive, "w") as z:
        for name, blob in entries.items():
            z.writestr(name, blob)
    before = files_of(run_dir)

    one_line_error(resume(run_dir), "agent.zip", "changed since nas-gym wrote it")
    assert files_of(run_dir) == before and not marker.exists()

    result = resume(run_dir, "--trust-run-folder")
    assert result.exit_code == 0, result.output
    assert not marker.exists()  # custom_objects: SB3 never unpickles the entry


def _code_config(run_dir: Path, marker: Path) -> None:
    plugin = run_dir.parent / "evil.py"
    plugin.write_text(f"open({str(marker)!r}, 'w').close()\nfrom nas_gym.spaces.layer_chain.space import LayerChainSpace as X\n")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["space"]["kind"] = f"{plugin}:X"
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.parametrize("command", ["resume", "retrain"])
def test_a_config_naming_code_in_a_changed_run_folder_never_runs(tmp_path, command):
    run_dir = stopped_run(tmp_path / "runs", "random")
    marker = tmp_path / "pwned"
    _code_config(run_dir, marker)
    before = files_of(run_dir)
    args = ["search", "--resume", str(run_dir)] if command == "resume" else ["retrain", str(run_dir), "--epochs", "1"]
    one_line_error(runner.invoke(app, args), "config.yaml", "changed since nas-gym wrote it")
    assert files_of(run_dir) == before and not marker.exists()


def test_an_unsigned_run_folder_is_refused_unless_trusted(tmp_path):
    run_dir = stopped_run(tmp_path / "runs", "random")
    raw = json.loads((run_dir / MANIFEST).read_text())
    del raw[trust.SIGNATURE]  # as an older nas-gym, or someone else, wrote it
    (run_dir / MANIFEST).write_text(json.dumps(raw))
    one_line_error(resume(run_dir), "checkpoint.json", "not signed", "--trust-run-folder")
    assert resume(run_dir, "--trust-run-folder").exit_code == 0


def test_a_folder_signed_with_another_key_is_refused(tmp_path, monkeypatch):
    run_dir = stopped_run(tmp_path / "runs", "random")
    monkeypatch.setenv(trust.KEY_ENV, str(tmp_path / "other-user" / "signing.key"))
    one_line_error(resume(run_dir), "checkpoint.json", "signature does not match")


def test_the_key_is_created_once_and_private(tmp_path, monkeypatch):
    monkeypatch.setenv(trust.KEY_ENV, str(tmp_path / "k" / "signing.key"))
    first = trust.signing_key()
    assert trust.signing_key() == first and len(first) == 32
    assert stat.S_IMODE(os.stat(tmp_path / "k" / "signing.key").st_mode) == 0o600


def test_a_key_others_can_read_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(trust.KEY_ENV, str(tmp_path / "k" / "signing.key"))
    trust.signing_key()
    os.chmod(tmp_path / "k" / "signing.key", 0o644)
    with pytest.raises(trust.TrustError, match="chmod 600"):
        trust.signing_key()
