"""Architectures that fail to train, with real models: recorded, rewarded, the search goes on.

Each kind of failure runs a real ``nas-gym search`` (random agent, tiny preset, real training)
and is checked where it must show: the cache row carries the reason, the CSV reward is the
failure reward, every episode ran, and ``nas-gym leaderboard`` lists the failures apart.

NaN: a learning rate of 1e6 is refused by the config (``train.lr`` is capped at 10), and at 10
batch norm keeps the loss finite. A weight decay of 1e6 is the reliable trigger: decoupled
decay multiplies every weight by (1 - lr * wd) = -9999 per step, so weights overflow within an
epoch whatever the architecture.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

import nas_gym.cli as cli
import nas_gym.cli.leaderboard as cli_leaderboard
from nas_gym.runs.leaderboard import read_entries
from nas_gym.spaces.layer_chain.chain import Chain
from nas_gym.spaces.layer_chain.space import LayerChainSpace
from nas_gym.training import train as train_mod

runner = CliRunner()
CHANCE = 0.1  # mnist1d has 10 classes: the default failure reward is 1 / 10


def search(tmp_path: Path, episodes: int, *sets: str) -> tuple[Path, list[dict[str, str]]]:
    """Run a real search; return its run folder and CSV rows."""
    args = ["search", "--agent", "random", "--config", "mnist1d-tiny", "--episodes", str(episodes), "--seed", "0",
            "--logdir", str(tmp_path / "runs"), "--set", f"evaluator.cache={tmp_path / 'c.sqlite'}",
            "--set", "train.epochs=1", "--set", "data.train_fraction=0.25"]
    for s in sets:
        args += ["--set", s]
    result = runner.invoke(cli.app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"{episodes} episodes" in result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    with (run_dir / "evaluations.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == episodes  # every episode ran, failures or not
    return run_dir, rows


def cache_rows(tmp_path: Path) -> dict[str, tuple[str, str, int]]:
    """arch -> (status, reason, params) of every stored result; no key stored twice."""
    conn = sqlite3.connect(tmp_path / "c.sqlite")
    try:
        rows = conn.execute("SELECT arch, status, reason, params FROM results").fetchall()
    finally:
        conn.close()
    assert len(rows) == len({r[0] for r in rows})
    return {arch: (status, reason, params) for arch, status, reason, params in rows}


def leaderboard_output(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``nas-gym leaderboard RUN_DIR`` on a wide console, so no table cell is folded."""
    monkeypatch.setattr(cli_leaderboard, "out", Console(width=400))
    result = runner.invoke(cli.app, ["leaderboard", str(run_dir)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def failures_section(output: str) -> str:
    head, sep, tail = output.partition("failed architectures")
    assert sep, output
    return tail


def check_failures(tmp_path: Path, run_dir: Path, rows: list[dict[str, str]], failed: list[dict[str, str]],
                   reward: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared promises: cached with the reason (unless our own code raised, or memory ran
    out: those say nothing about the architecture elsewhere), failure reward, listed apart."""
    stored = cache_rows(tmp_path)
    crashed = {r["arch"] for r in failed if r["reason"].startswith(("exception:", "out_of_memory"))}
    assert {r["arch"] for r in rows} - crashed == set(stored)
    for row in failed:
        if row["arch"] not in crashed:
            assert stored[row["arch"]][:2] == ("failed", row["reason"])
        assert float(row["reward"]) == pytest.approx(reward) and float(row["val_acc"]) == 0.0
    ok_entries, fail_entries = read_entries([run_dir])
    assert {e.arch: e.reason for e in fail_entries} == {r["arch"]: r["reason"] for r in failed}
    assert not {e.arch for e in ok_entries} & {e.arch for e in fail_entries}
    output = leaderboard_output(run_dir, monkeypatch)
    assert f"{len(fail_entries)} failed architectures" in output
    section = failures_section(output)
    for row in failed:
        assert row["arch"] in section and row["reason"] in section


@pytest.mark.slow
def test_nan_loss_is_recorded_with_the_configured_failure_reward(tmp_path, monkeypatch):
    run_dir, rows = search(tmp_path, 5, "train.weight_decay=1e6", "reward.failure_reward=-0.25")
    assert {(r["status"], r["reason"]) for r in rows} == {("failed", "nan_loss")}
    check_failures(tmp_path, run_dir, rows, rows, -0.25, monkeypatch)


@pytest.mark.slow
def test_too_many_params_is_refused_and_the_rest_trains(tmp_path, monkeypatch):
    run_dir, rows = search(tmp_path, 8, "train.max_params=3000")
    failed = [r for r in rows if r["status"] != "ok"]
    trained = [r for r in rows if r["status"] == "ok"]
    assert failed and trained  # a mixed search: the failures did not stop the others
    assert all(int(r["params"]) > 3000 and r["reason"] == f"too_many_params: {r['params']} > 3000" for r in failed)
    assert all(int(r["params"]) <= 3000 and float(r["val_acc"]) > CHANCE / 2 for r in trained)
    check_failures(tmp_path, run_dir, rows, failed, CHANCE, monkeypatch)
    assert {e.arch for e in read_entries([run_dir])[0]} == {r["arch"] for r in trained}


@pytest.mark.slow
@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                                   MemoryError()], ids=["cuda-oom", "host-MemoryError"])
def test_out_of_memory_inside_training(tmp_path, monkeypatch, error):
    """Raised from inside the training loop of the bigger networks; the smaller ones train."""
    real_fit = train_mod._fit

    def fit(rw, *args, **kwargs):  # rw: the Rewritten network the trainer trains
        if sum(p.numel() for p in rw.net.parameters()) > 3000:
            raise error
        return real_fit(rw, *args, **kwargs)

    monkeypatch.setattr(train_mod, "_fit", fit)
    run_dir, rows = search(tmp_path, 8)
    failed = [r for r in rows if r["status"] != "ok"]
    assert failed and len(failed) < len(rows)
    assert {r["reason"] for r in failed} == {"out_of_memory"}
    assert all(int(r["params"]) > 3000 for r in failed)  # measured before training started
    check_failures(tmp_path, run_dir, rows, failed, CHANCE, monkeypatch)


@pytest.mark.slow
def test_exception_in_the_builder(tmp_path, monkeypatch):
    """A builder that raises (a multi-line message, as torch's are) fails that architecture only."""
    real_build = LayerChainSpace.build_model

    def build(space, arch: Chain, *args, **kwargs):
        if any(op.kind == "avgpool" for op in arch.ops):
            raise ValueError("cannot build avgpool here\n  (a second line of detail)")
        return real_build(space, arch, *args, **kwargs)

    monkeypatch.setattr(LayerChainSpace, "build_model", build)
    run_dir, rows = search(tmp_path, 8, "train.max_params=3000")
    broken = [r for r in rows if "avgpool" in r["arch"]]
    assert broken and len(broken) < len(rows)
    expected = "exception: ValueError: cannot build avgpool here (a second line of detail)"
    assert {(r["status"], r["reason"]) for r in broken} == {("failed", expected)}
    assert all(r["status"] == "ok" or r["reason"].startswith("too_many_params") for r in rows if r not in broken)
    failed = [r for r in rows if r["status"] != "ok"]
    check_failures(tmp_path, run_dir, rows, failed, CHANCE, monkeypatch)
