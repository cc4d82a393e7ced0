"""Anytime curves over simulated time, the repeats-charged accounting and the tests against random
search, on hand-made runs whose incumbents and clocks are known step by step."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from nas_gym.config import load_config
from nas_gym.runs.anytime import charged_clock, curve, incumbent_at, quartiles, time_grid, write_curves_csv
from nas_gym.runs.compare_table import agent_curves, holm_rows
from nas_gym.runs.outcome import PROTOCOL_JSON, AgentSummary, RunResult, load_run, result_of, write_protocol
from nas_gym.runs.reference import Reference
from nas_gym.runs.runlog import CSV_FIELDS, EVALUATIONS_CSV, Record

SPACE = load_config("mnist1d-tiny").search_space()


def rec(episode: int, arch: str, val: float, status: str = "ok") -> Record:
    return Record(episode, arch, val, val, 1, 1, status, "")


def test_grid_is_equally_spaced_and_ends_at_the_budget():
    grid = time_grid(12.0, 4)
    assert grid.tolist() == [3.0, 6.0, 9.0, 12.0]
    with pytest.raises(ValueError, match="budget > 0"):
        time_grid(0.0)


def test_incumbent_steps_follow_the_best_finished_so_far():
    """Finished at 1, 2, 3, 4 s: 0.5, then 0.7 (new best), a failure reporting 0.95 (never an
    incumbent), then an equal 0.7 (the first keeps it), then 0.9."""
    records = [rec(1, "a", 0.5), rec(2, "b", 0.7), rec(3, "c", 0.95, "failed"), rec(4, "d", 0.7), rec(5, "e", 0.9)]
    times = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert incumbent_at(records, times, [0.5, 1.0, 2.5, 3.5, 4.5, 5.0, 99.0]) == [None, 0, 1, 1, 1, 4, 4]


def test_records_arriving_out_of_order_count_from_when_they_finish():
    """Simulated parallel workers: the second record finished first."""
    records = [rec(1, "a", 0.9), rec(2, "b", 0.6)]
    assert incumbent_at(records, [5.0, 2.0], [1.0, 3.0, 6.0]) == [None, 1, 0]


def test_curve_reads_the_incumbents_value_nan_before_the_first_result():
    test = {"a": 0.40, "b": 0.80, "c": 0.60}
    records = [rec(1, "a", 0.5), rec(2, "b", 0.4), rec(3, "c", 0.9)]
    out = curve(records, [2.0, 4.0, 6.0], [1.0, 3.0, 5.0, 7.0], lambda r: test[r.arch])
    assert math.isnan(out[0])
    assert out[1:].tolist() == [0.40, 0.40, 0.60], "b never led: its test accuracy is never read"


def test_quartiles_over_the_runs_that_have_a_value():
    curves = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 6.0]])
    q = quartiles(curves)
    assert q["runs"].tolist() == [3, 2]
    assert (q["q25"][0], q["median"][0], q["q75"][0]) == (2.0, 3.0, 4.0)
    assert (q["q25"][1], q["median"][1], q["q75"][1]) == (3.0, 4.0, 5.0)
    assert math.isnan(quartiles(np.array([[np.nan]]))["median"][0])


def test_charged_clock_charges_each_repeat_its_first_cost():
    """a costs 1 s, b 2 s, c 3 s; a is repeated twice (cache hits: the free clock does not move)."""
    paid = charged_clock(["a", "b", "a", "a", "c"], [1.0, 3.0, 3.0, 3.0, 6.0])
    assert paid.tolist() == [1.0, 3.0, 4.0, 5.0, 8.0]


ARCHS = ["conv3-16", "conv5-16", "conv3-32", "maxpool"]


def test_repeats_charged_cut_the_run_earlier_and_both_are_reported():
    """Budget 4 s. Free: the first four records finished by 3.5 s (the fifth at 6 s is past it).
    Charged: the repeat of conv3-16 costs its 1 s again, so conv3-32 (finishing at 4.5 s) no longer
    fits, and the pick falls back to conv5-16."""
    ref = Reference(np.array([0.3, 0.5, 0.7, 0.9]), lambda a: {"conv3-16": 0.5, "conv5-16": 0.7, "conv3-32": 0.9,
                                                                 "maxpool": 0.3}[a.text()],
                    test=lambda a: {"conv3-16": 0.45, "conv5-16": 0.65, "conv3-32": 0.85, "maxpool": 0.25}[a.text()])
    records = [rec(1, "conv3-16", 0.6), rec(2, "conv5-16", 0.8), rec(3, "conv3-16", 0.6), rec(4, "conv3-32", 0.85),
               rec(5, "maxpool", 0.2)]
    clock = [1.0, 3.0, 3.0, 3.5, 6.0]  # conv3-32 costs 0.5 s
    run = result_of("a", 0, Path("r"), records, clock, None, 4.0, SPACE)
    assert run.stopped_by == "seconds" and len(run.records) == 4 and len(run.charged) == 3
    row = run.row(SPACE, ref)
    assert (row["evaluations"], row["repeats"], row["evaluations_charged"]) == ("4", "1", "3")
    assert float(row["budget_used"]) == pytest.approx(3.5 / 4.0)
    assert row["arch"] == "conv3-32" and float(row["test_acc"]) == pytest.approx(0.85)
    assert float(row["regret"]) == pytest.approx(0.0)
    assert float(row["test_acc_charged"]) == pytest.approx(0.65)
    assert float(row["regret_charged"]) == pytest.approx(0.9 - 0.7)
    assert (float(row["mean_val_acc"]), float(row["mean_val_acc_charged"])) == pytest.approx((0.9, 0.7))


def test_a_run_that_only_repeats_is_charged_for_it():
    """An agent that keeps re-proposing its best ends at the episode cap with budget left when
    repeats are free; charged, the same run passes the budget and is cut."""
    records = [rec(1, "conv5-16", 0.8), rec(2, "conv3-16", 0.6)] + [rec(i, "conv3-16", 0.6) for i in range(3, 9)]
    clock = [2.0, 3.0] + [3.0] * 6
    run = result_of("rl", 1, Path("r"), records, clock, None, 6.0, SPACE)
    assert run.stopped_by == "evaluations" and len(run.records) == 8
    assert len(run.charged) == 5, "2 s + 1 s + three 1 s repeats = 6 s: the budget"
    assert run.row(SPACE, None)["budget_used"] == f"{3.0 / 6.0:.4f}"


def write_run(folder: Path, records: list[Record], clock: list[float], budget: float, sim: list[float] | None = None) -> Path:
    folder.mkdir(parents=True)
    fields = list(CSV_FIELDS)  # the last two: sim_start, sim_finish
    with (folder / EVALUATIONS_CSV).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for i, r in enumerate(records):
            w.writerow([r.episode, r.arch, f"{r.val_acc:.6f}", f"{r.reward:.6f}", 1, 1, r.status, "", i + 1, 0, "",
                        "1.0", "", "", *([sim[i]] if sim else [""])])
    write_protocol(folder, {"agent": "x", "seed": 4, "budget_seconds": budget, "clock": clock,
                            "simulated_workers": 4 if sim else 1})
    return folder


def test_load_run_reads_the_folder_back(tmp_path):
    records = [rec(1, "conv3-16", 0.6), rec(2, "conv5-16", 0.8), rec(3, "conv3-32", 0.9)]
    run = load_run(write_run(tmp_path / "r", records, [1.0, 2.0, 5.0], 4.0), SPACE)
    assert (run.agent, run.seed, run.time_source, run.stopped_by) == ("x", 4, "clock", "seconds")
    assert [r.arch for r in run.records] == ["conv3-16", "conv5-16"] and run.clock == (1.0, 2.0)


def test_sim_finish_replaces_the_clock_and_leaves_no_charged_accounting(tmp_path):
    """Four simulated workers: the charged seconds sum past the budget, the simulated moments do not."""
    records = [rec(1, "conv3-16", 0.6), rec(2, "conv5-16", 0.8), rec(3, "conv3-32", 0.9)]
    run = load_run(write_run(tmp_path / "r", records, [3.0, 6.0, 9.0], 4.0, sim=[3.0, 3.0, 3.5]), SPACE)
    assert run.time_source == "sim_finish" and run.charged is None
    assert len(run.records) == 3 and run.clock == (3.0, 3.0, 3.5) and run.pick.arch == "conv3-32"
    assert run.row(SPACE, None)["evaluations_charged"] == ""


def summary(agent: str, values: list[float]) -> AgentSummary:
    rows = tuple({"test_acc": f"{v:.6f}"} for v in values)
    return AgentSummary(agent, (), rows, 10)


def test_holm_columns_beside_the_uncorrected_mann_whitney():
    """Two agents against random: Holm multiplies the smaller p by 2 and keeps the order."""
    rand, good, same = [0.50, 0.52, 0.51, 0.49, 0.53], [0.60, 0.62, 0.61, 0.63, 0.64], [0.50, 0.515, 0.495, 0.52, 0.505]
    rows = {r["agent"]: r for r in holm_rows([summary("random", rand), summary("good", good), summary("same", same)])}
    p_good = mannwhitneyu(good, rand, alternative="two-sided").pvalue
    p_same = mannwhitneyu(same, rand, alternative="two-sided").pvalue
    assert p_good < p_same
    assert float(rows["good"]["p_mwu"]) == pytest.approx(p_good, rel=1e-5)
    assert float(rows["good"]["p_holm"]) == pytest.approx(min(1.0, 2 * p_good), rel=1e-5)
    assert float(rows["same"]["p_holm"]) == pytest.approx(max(min(1.0, 2 * p_good), p_same), rel=1e-5)
    assert rows["random"]["p_mwu"] == "" and rows["random"]["runs"] == "5"


def test_agent_curves_and_csv(tmp_path):
    ref = Reference(np.array([0.5, 0.9]), lambda a: {"conv3-16": 0.5, "conv5-16": 0.9}[a.text()],
                    test=lambda a: {"conv3-16": 0.4, "conv5-16": 0.8}[a.text()])
    runs = (RunResult("a", 0, Path("r0"), (rec(1, "conv3-16", 0.6), rec(2, "conv5-16", 0.7)), (1.0, 2.0), "evaluations"),
            RunResult("a", 1, Path("r1"), (rec(1, "conv5-16", 0.7),), (3.0,), "evaluations"))
    s = AgentSummary("a", runs, (), 2)
    grid = np.array([1.0, 2.0, 3.0])
    curves = agent_curves([s], SPACE, ref, grid)
    assert np.array_equal(curves["a"]["test_acc"], np.array([[0.4, 0.8, 0.8], [np.nan, np.nan, 0.8]]), equal_nan=True)
    assert curves["a"]["regret"][0].tolist() == pytest.approx([0.4, 0.0, 0.0])
    path = write_curves_csv(tmp_path / "anytime.csv", curves, grid)
    rows = [r for r in csv.DictReader(path.open()) if r["metric"] == "test_acc"]
    assert [(r["seconds"], r["runs"], r["median"]) for r in rows] == [("1", "1", "0.400000"), ("2", "1", "0.800000"),
                                                                     ("3", "2", "0.800000")]


def test_protocol_file_is_json_with_the_clock(tmp_path):
    write_protocol(tmp_path, {"agent": "a", "seed": 0, "budget_seconds": 1.0, "clock": [0.5]})
    assert json.loads((tmp_path / PROTOCOL_JSON).read_text())["clock"] == [0.5]


@pytest.mark.slow
def test_compare_command_writes_anytime_curves_and_holm_columns(tmp_path):
    from typer.testing import CliRunner

    from nas_gym.cli import app

    result = CliRunner().invoke(app, ["compare", "--agents", "random,evolution", "--config", "mnist1d-tiny", "--evaluator",
                                      "table", "--budget-seconds", "3", "--seeds", "2", "--logdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "anytime.csv").open()))
    assert {r["agent"] for r in rows} == {"random", "evolution"} and {r["metric"] for r in rows} >= {"test_acc", "regret"}
    last = [r for r in rows if r["metric"] == "test_acc" and float(r["seconds"]) == 3.0]
    by_agent = {r["agent"]: r for r in csv.DictReader((tmp_path / "comparison.csv").open()) if r["seed"] == "0"}
    assert len(last) == 2 and all(r["runs"] == "2" for r in last)
    tests = {r["agent"]: r for r in csv.DictReader((tmp_path / "tests.csv").open())}
    assert tests["evolution"]["p_mwu"] != "" and float(tests["evolution"]["p_holm"]) >= float(tests["evolution"]["p_mwu"])
    assert by_agent["random"]["test_acc_charged"] != "" and by_agent["random"]["budget_used"] != ""
    assert (tmp_path / "anytime.png").stat().st_size > 0
