"""Cost-aware results: with a ``constraint`` reward whose most accurate architecture breaks the
constraint, everything that ranks (top-5, best, leaderboard, ``retrain RUN_DIR``, compare's
pick) hands back the best *reward*, shows the cost and whether it meets the target, and the
CSV records the cost the reward used."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nas_gym.cli import app
from nas_gym.config import load_config
from nas_gym.evaluators.table import TABLE_DIR
from nas_gym.runs.compare import run_comparison
from nas_gym.runs.leaderboard import read_entries
from nas_gym.runs.report import cost_text
from nas_gym.runs.retrain import resolve_target
from nas_gym.runs.runlog import best_of, read_records

TARGET = 2000  # parameters; the tiny space's 10th percentile is about 1,850, its most accurate cells have 6,000-10,000
CONSTRAINT = ["--set", "reward.kind=constraint", "--set", "reward.cost=params", "--set", f"reward.target={TARGET}"]
EPISODES = 150

pytestmark = pytest.mark.skipif(not (TABLE_DIR / "mnist1d-tiny.jsonl.gz").is_file(), reason="shipped table not built")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> tuple[Path, str]:
    logdir = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(app, ["search", "--agent", "random", "--config", "mnist1d-tiny", "--evaluator", "table",
                                      "--episodes", str(EPISODES), "--seed", "0", "--logdir", str(logdir), *CONSTRAINT],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (folder,) = logdir.iterdir()
    return folder, result.output


def _most_accurate(records):
    return max((r for r in records if r.status == "ok"), key=lambda r: r.val_acc)


def test_the_case_is_the_one_that_misled(run_dir):
    """The run's most accurate architecture breaks the constraint, so ranking by accuracy would
    hand it back."""
    records = read_records(run_dir[0])
    assert _most_accurate(records).params > TARGET


def test_csv_records_the_cost_the_reward_used(run_dir):
    rows = list(csv.DictReader((run_dir[0] / "evaluations.csv").open()))
    assert {"cost", "cost_factor", "within_target"} <= set(rows[0])
    for row in rows:
        assert float(row["cost"]) == int(row["params"])
        assert row["within_target"] == str(int(int(row["params"]) <= TARGET))
        if row["status"] == "ok":
            assert float(row["reward"]) == pytest.approx(float(row["val_acc"]) * float(row["cost_factor"]), abs=1e-6)


def test_best_and_top_table_rank_by_reward(run_dir):
    folder, output = run_dir
    records = read_records(folder)
    best = best_of(records)
    assert best.reward == max(r.reward for r in records if r.status == "ok")
    accurate = _most_accurate(records)
    assert best.arch != accurate.arch and best.reward > accurate.reward
    top_line = next(line for line in output.splitlines() if line.lstrip("│ ").startswith("1 "))
    assert best.arch in top_line and cost_text(best.cost, best.within_target) in top_line
    assert "reward" in output and "Top 5 architectures by reward" in output
    last = [line for line in output.splitlines() if line.startswith(f"search {EPISODES}/{EPISODES} episodes")][-1]
    assert f"best reward {best.reward:.4f} (val {best.val_acc:.4f}, cost {cost_text(best.cost, best.within_target)})" in last


def test_leaderboard_and_retrain_take_the_best_reward(run_dir):
    folder, _ = run_dir
    best = best_of(read_records(folder))
    entries, _ = read_entries([folder])
    assert entries[0].arch == best.arch and entries[0].within_target == best.within_target
    assert [e.reward for e in entries] == sorted((e.reward for e in entries), reverse=True)
    assert resolve_target(str(folder))[0] == best.arch
    shown = CliRunner().invoke(app, ["leaderboard", str(folder), "--top", "3"], catch_exceptions=False).output
    assert "by reward" in shown
    first = next(line for line in shown.splitlines() if line.lstrip("│ ").startswith("1 "))
    assert best.arch in first and cost_text(best.cost, best.within_target) in first


def test_leaderboard_filters_by_preset_and_evaluator(run_dir, tmp_path):
    folder, _ = run_dir
    ok = CliRunner().invoke(app, ["leaderboard", str(folder.parent), "--preset", "mnist1d-tiny", "--evaluator", "table"])
    assert ok.exit_code == 0, ok.output
    none = CliRunner().invoke(app, ["leaderboard", str(folder.parent), "--evaluator", "train"])
    assert none.exit_code == 2 and "no run with evaluator 'train'" in none.output and "mnist1d-tiny/table" in none.output
    assert "-table-s0-" in folder.name  # the run folder names its evaluator


def test_compare_picks_by_reward(tmp_path):
    cfg = load_config("mnist1d-tiny", {"evaluator.kind": "table", "reward.kind": "constraint", "reward.cost": "params",
                                       "reward.target": TARGET})
    summaries, _ = run_comparison(cfg, ["random"], 60, 2, tmp_path, evaluator="table")
    for run, row in zip(summaries[0].runs, summaries[0].rows, strict=True):
        pick = best_of(list(run.records))
        assert row["arch"] == pick.arch and row["within_target"] == str(int(pick.within_target))
        assert float(row["reward"]) == max(r.reward for r in run.records if r.status == "ok")
