"""`nas-gym compare`: what each run hands back, its test accuracy from the table, equal budgets
of evaluations or of simulated seconds, the CSV, and the NATS-Bench-style benchmark script."""

from __future__ import annotations

import csv
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nas_gym.benchmarks.header import make_header
from nas_gym.benchmarks.table_build import distinct_architectures
from nas_gym.cli import app
from nas_gym.config import load_config
from nas_gym.evaluators import table as table_module
from nas_gym.evaluators.base import EvalResult
from nas_gym.evaluators.table import TableEvaluator, make_row, write_table
from nas_gym.runs.compare import (
    CAP_FACTOR,
    CSV_COLUMNS,
    AgentSummary,
    Reference,
    RunResult,
    best_so_far,
    run_comparison,
)
from nas_gym.runs.runlog import Record, read_records

ROOT = Path(__file__).resolve().parent.parent
PRESET = "mnist1d-tiny"
BUILTIN = ["random", "evolution", "qlearning", "reinforce", "ppo", "maskable_ppo", "dqn", "a2c", "greedy"]


def table_rows_by_arch() -> dict[str, dict]:
    """The shipped table's raw rows, read without the evaluator: what test accuracy must come from."""
    with gzip.open(table_module.TABLE_DIR / f"{PRESET}.jsonl.gz", "rt") as f:
        f.readline()
        return {row["arch"]: row for row in map(json.loads, f)}


def rec(episode: int, arch: str, val: float, status: str = "ok") -> Record:
    return Record(episode, arch, val, val, 1, 1, status, "")


# -- one run's row, by hand -------------------------------------------------------------------
def test_best_so_far_pads_and_accumulates():
    assert best_so_far([0.2, 0.5, 0.4], 5).tolist() == [0.2, 0.5, 0.5, 0.5, 0.5]
    assert best_so_far([0.1, 0.3, 0.2, 0.9], 2).tolist() == [0.1, 0.3]


def test_row_against_hand_computed():
    """The pick is the best *as the search saw it* (first on ties); regret, test accuracy and the
    top 1% use the reference's mean values, not what the search saw."""
    space = load_config(PRESET).search_space()
    true = {"conv3-16": 0.995, "conv5-16": 0.5, "conv3-32": 0.7, "maxpool": 0.3}  # top 1% of linspace: >= 0.99
    ref = Reference(np.linspace(0.0, 1.0, 101), lambda a: true[a.text()], test=lambda a: true[a.text()] - 0.1)
    records = (rec(1, "conv5-16", 0.9), rec(2, "conv5-16", 0.6), rec(3, "maxpool", 0.0, "failed"),
               rec(4, "conv3-16", 0.8), rec(5, "conv3-32", 0.9))
    run = RunResult("a", 3, Path("r"), records, (1.0, 1.0, 1.5, 2.5, 3.0), "seconds")
    row = run.row(space, ref)
    assert set(row) == set(CSV_COLUMNS)
    assert (row["arch"], row["val_acc"], row["mean_val_acc"]) == ("conv5-16", "0.900000", "0.500000")
    assert float(row["regret"]) == pytest.approx(1.0 - 0.5) and float(row["test_acc"]) == pytest.approx(0.4)
    assert (row["evaluations"], row["distinct_archs"], row["train_seconds"]) == ("5", "4", "3.0000")
    assert (row["reached_top"], row["evals_to_top"], row["distinct_to_top"]) == ("1", "4", "3")

    bare = run.row(space, None)  # an evaluator without a table: those columns stay empty
    assert bare["arch"] == "conv5-16" and bare["evaluations"] == "5"
    assert all(bare[c] == "" for c in ("mean_val_acc", "test_acc", "regret", "reached_top", "evals_to_top"))


def test_median_to_top_counts_a_seed_that_never_got_there_as_infinite():
    rows = tuple({"evals_to_top": v, "reached_top": str(int(v != ""))} for v in ("3", "", "5"))
    s = AgentSummary("a", (), rows, 10)
    assert s.median_to_top() == 5.0 and s.reached_top == 2
    assert math.isinf(AgentSummary("b", (), rows[:2], 10).median_to_top()), "one of two never got there"


# -- through the command ---------------------------------------------------------------------
def test_compare_through_cli_on_synthetic(tmp_path):
    result = CliRunner().invoke(app, ["compare", "--agents", "random,evolution,qlearning", "--config", PRESET,
                                      "--evaluator", "synthetic", "--budget", "30", "--seeds", "2",
                                      "--logdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Optimum of the space" in result.output and "evolution" in result.output
    with Image.open(tmp_path / "comparison.png") as img:
        img.load()
        assert img.size == (800, 500)
    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert len(rows) == 3 * 2 and tuple(rows[0]) == CSV_COLUMNS
    assert all(r["evaluations"] == "30" and r["stopped_by"] == "evaluations" for r in rows)
    assert all(r["test_acc"] == "" and float(r["regret"]) >= 0 for r in rows), "synthetic: scores known, no test set"
    assert len(list((tmp_path / "random").iterdir())) == 2, "one run folder per seed"


@pytest.mark.parametrize("args, message", [(["--agents", "random,nope"], "unknown agent 'nope'"),
                                           (["--budget-seconds", "0"], "--budget-seconds must be > 0")],
                         ids=["agent", "seconds"])
def test_compare_rejects_bad_input_before_running(tmp_path, args, message):
    result = CliRunner().invoke(app, ["compare", "--evaluator", "synthetic", "--logdir", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "random").exists()


def test_compare_on_the_table_cli_columns_and_test_accuracy(tmp_path):
    """Each row's test accuracy is the table's mean test accuracy of the returned architecture,
    which is the run's best by the validation accuracy it was shown."""
    result = CliRunner().invoke(app, ["compare", "--agents", "random,evolution", "--config", PRESET, "--evaluator",
                                      "table", "--budget-seconds", "6", "--seeds", "2", "--logdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "budget 6 simulated" in result.output and "its test accuracy 0.9220" in result.output
    assert "p vs random (MWU / Holm)" in result.output  # evolution's test, corrected beside uncorrected
    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert [(r["agent"], r["seed"]) for r in rows] == [("random", "0"), ("random", "1"), ("evolution", "0"),
                                                       ("evolution", "1")]
    raw = table_rows_by_arch()
    for r in rows:
        counted = read_records(Path(r["run_dir"]))[: int(r["evaluations"])]
        best = max(counted, key=lambda x: x.val_acc)
        assert r["arch"] == best.arch and float(r["val_acc"]) == pytest.approx(best.val_acc)
        assert float(r["test_acc"]) == pytest.approx(np.mean(raw[r["arch"]]["test_acc"]), abs=1e-6)
        assert float(r["mean_val_acc"]) == pytest.approx(np.mean(raw[r["arch"]]["val_acc"]), abs=1e-6)
        assert all(r[c] != "" for c in CSV_COLUMNS if c not in ("evals_to_top", "distinct_to_top", "cost", "within_target"))
        assert r["cost"] == r["within_target"] == ""  # an accuracy reward uses no cost


@pytest.mark.parametrize("agent", BUILTIN)
def test_budget_seconds_stops_every_agent_at_the_same_simulated_seconds(tmp_path, agent):
    """The clock is replayed independently from the table: the counted evaluations fit in the
    budget and the next one the run made would have passed it."""
    seconds = 4.0
    cfg = load_config(PRESET)
    (summary,), ref = run_comparison(cfg, [agent], None, [1], tmp_path, evaluator="table", budget_seconds=seconds)
    (run,), (row,) = summary.runs, summary.rows
    assert summary.budget == math.ceil(seconds / ref.mean_seconds), "agents plan for the architectures that fit"
    assert row["stopped_by"] == "seconds"
    replay = TableEvaluator(cfg, run_seed=1)  # the run's own draws of training seeds and its charges
    clock = []
    for r in read_records(run.run_dir):
        replay.evaluate(r.arch)
        clock.append(replay.stats.train_seconds)
    n = int(row["evaluations"])
    assert len(clock) > n and clock[n - 1] <= seconds < clock[n]
    assert float(row["train_seconds"]) == pytest.approx(clock[n - 1], abs=1e-4)


def test_a_run_that_only_repeats_stops_at_the_evaluation_cap(tmp_path, monkeypatch):
    """A five-architecture table holds less time than the budget: the run cannot pass it and is
    stopped after CAP_FACTOR x the planned evaluations, saying so."""
    cfg = load_config(PRESET, {"space.ops": ["conv3-16", "maxpool"], "space.max_depth": 2})
    archs = list(cfg.search_space().enumerate())
    rows = [make_row(a, [EvalResult(arch=a.text(), val_acc=0.1 * i + 0.01 * s, test_acc=0.5, params=1, flops=1,
                                    train_seconds=1.0, train_loss=0.1) for s in (0, 1)]) for i, a in enumerate(archs)]
    write_table(tmp_path / "tables" / f"{PRESET}.jsonl.gz", make_header(cfg, [0, 1], rows, 1), rows)
    monkeypatch.setattr(table_module, "TABLE_DIR", tmp_path / "tables")
    (summary,), _ = run_comparison(cfg, ["random"], 4, [0], tmp_path / "runs", evaluator="table", budget_seconds=100.0)
    (row,) = summary.rows
    assert row["stopped_by"] == "evaluations" and row["evaluations"] == str(CAP_FACTOR * 4)
    assert float(row["train_seconds"]) == pytest.approx(len(archs)), "every architecture charged once, repeats free"


def test_budget_of_evaluations_charges_the_table_clock(tmp_path):
    """With a count budget, each run is charged the recorded seconds of every distinct
    architecture it evaluated (repeats are cache hits), under its own seed draws."""
    cfg = load_config(PRESET)
    (summary,), _ = run_comparison(cfg, ["random"], 15, 2, tmp_path, evaluator="table")
    for seed, (run, row) in enumerate(zip(summary.runs, summary.rows, strict=True)):
        table = TableEvaluator(cfg, run_seed=seed)
        archs = {r.arch for r in read_records(run.run_dir)}
        assert row["evaluations"] == "15" and row["stopped_by"] == "evaluations"
        assert float(row["train_seconds"]) == pytest.approx(sum(table.evaluate(a).train_seconds for a in archs), abs=1e-3)


@pytest.mark.slow
def test_parallel_runs_give_the_serial_results(tmp_path):
    """``workers=2`` runs the (agent, seed) searches in spawned processes: every run hands back
    the same architectures, rewards and clock as the serial comparison, in the same order."""
    cfg = load_config(PRESET)
    kwargs = dict(evaluator="table", budget_seconds=4.0)
    serial, _ = run_comparison(cfg, ["random", "evolution"], None, 2, tmp_path / "serial", **kwargs)
    parallel, _ = run_comparison(cfg, ["random", "evolution"], None, 2, tmp_path / "parallel", workers=2, **kwargs)
    assert [s.agent for s in parallel] == ["random", "evolution"]
    for a, b in zip(serial, parallel, strict=True):
        assert [r.seed for r in b.runs] == [0, 1]
        assert [r.records for r in a.runs] == [r.records for r in b.runs]
        assert [r.clock for r in a.runs] == [r.clock for r in b.runs]
    csv_rows = list(csv.DictReader((tmp_path / "parallel" / "comparison.csv").open()))
    assert [(r["agent"], r["seed"]) for r in csv_rows] == [("random", "0"), ("random", "1"), ("evolution", "0"), ("evolution", "1")]


# -- the benchmark script ----------------------------------------------------------------------
def test_bench_page_keeps_other_presets_sections(tmp_path):
    from nas_gym.runs import bench_search as bench
    page = tmp_path / "bench_search.md"
    bench.write_page(page, "a", "## a\nfirst")
    bench.write_page(page, "b", "## b\nsecond")
    bench.write_page(page, "a", "## a\nagain")
    text = page.read_text()
    assert text.startswith(bench.PAGE_TITLE) and text.count(bench.PAGE_TITLE) == 1
    assert "again" in text and "second" in text and "first" not in text


@pytest.fixture
def fake_cell_table(tmp_path, monkeypatch) -> Path:
    """A made-up table of every distinct cell of ``mnist1d-cell``, where the shipped tables are looked for."""
    cfg = load_config("mnist1d-cell")
    rng = np.random.default_rng(0)
    rows = []
    for a in distinct_architectures(cfg):
        base = rng.uniform(0.1, 0.5)
        results = [EvalResult(arch=a.text(), val_acc=base + rng.normal(0, 0.02), test_acc=base - 0.01, params=1, flops=1,
                              train_seconds=float(rng.uniform(0.2, 0.3)), train_loss=1.0) for _ in (0, 1)]
        rows.append(make_row(a, results))
    folder = tmp_path / "tables"
    write_table(folder / "mnist1d-cell.jsonl.gz", make_header(cfg, [0, 1], rows, 1), rows)
    monkeypatch.setattr(table_module, "TABLE_DIR", folder)
    return folder


@pytest.mark.slow
def test_bench_search_runs_on_a_cell_table(tmp_path, fake_cell_table):
    from nas_gym.runs import bench_search as bench
    bench.main(["--config", "mnist1d-cell", "--seeds", "3", "--budget-seconds", "3", "--agents",
                "random,evolution,reinforce,ppo", "--out", str(tmp_path / "docs")])
    text = (tmp_path / "docs" / "bench_search.md").read_text()
    assert "<!-- bench_search:mnist1d-cell -->" in text and "5,044 architectures" in text
    assert "NAS-Bench-201's order: REA > REINFORCE > RS" in text and "Mann-Whitney p " in text
    assert (tmp_path / "docs" / "images" / "bench_search-mnist1d-cell.png").is_file()


def test_bench_search_reuses_the_finished_runs_of_a_folder(tmp_path, monkeypatch):
    """``--runs``: the runs already in the folder at this budget are read, not run again, and only
    the missing seeds are added; the page says how many were reused. Without ``--out`` the page
    goes to ``docs/`` under the working directory (never inside the installed package)."""
    from nas_gym.runs import bench_search as bench
    runs = tmp_path / "runs"
    monkeypatch.chdir(tmp_path)

    def search(seeds: int, out: str) -> dict:
        bench.main(["--config", "mnist1d-tiny", "--seeds", str(seeds), "--budget-seconds", "3", "--agents", "random",
                    "--runs", str(runs)] + (["--out", out] if out != "docs" else []))
        return json.loads((tmp_path / out / "bench_search-mnist1d-tiny.json").read_text())

    first = search(2, "a")
    folders = sorted(p.name for p in (runs / "random").iterdir())
    assert len(folders) == 2
    second = search(3, "docs")
    assert len(list((runs / "random").iterdir())) == 3 and set(folders) <= {p.name for p in (runs / "random").iterdir()}
    assert second["test_acc_percent"]["random"][:2] == first["test_acc_percent"]["random"]
    assert "2 of the 3 runs were finished runs read" in (tmp_path / "docs" / "bench_search.md").read_text()
    assert "were finished runs read" not in (tmp_path / "a" / "bench_search.md").read_text()
    # a run recorded as scored by another table file (a rebuilt table, same name and budget) is not reused
    protocol = runs / "random" / folders[0] / "protocol.json"
    info = json.loads(protocol.read_text())
    assert info["benchmark_file"]["file"] == "mnist1d-tiny.jsonl.gz" and len(info["benchmark_file"]["sha256"]) == 64
    info["benchmark_file"]["sha256"] = "0" * 64
    protocol.write_text(json.dumps(info))
    search(3, "c")
    assert len(list((runs / "random").iterdir())) == 4
    assert "2 of the 3 runs were finished runs read" in (tmp_path / "c" / "bench_search.md").read_text()


def test_a_second_compare_never_replaces_the_first(tmp_path):
    """Issue 24, defect 8: the earlier comparison's CSV and PNG survive a second compare into the
    same folder, which is refused before any run; ``--overwrite`` replaces them on purpose."""
    def compare(agents: str, *extra: str):
        return CliRunner().invoke(app, ["compare", "--agents", agents, "--config", PRESET, "--evaluator", "synthetic",
                                        "--budget", "5", "--seeds", "1", "--logdir", str(tmp_path), *extra])

    assert compare("random,evolution").exit_code == 0
    first = {name: (tmp_path / name).read_bytes() for name in ("comparison.csv", "comparison.png")}
    runs = sorted(p.name for p in tmp_path.rglob("*") if p.is_dir())

    result = compare("random")
    assert result.exit_code == 2 and "already holds a comparison" in result.output and "--overwrite" in result.output
    assert {name: (tmp_path / name).read_bytes() for name in first} == first
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_dir()) == runs  # no run started

    assert compare("random", "--overwrite").exit_code == 0
    assert (tmp_path / "comparison.csv").read_bytes() != first["comparison.csv"]


@pytest.mark.parametrize("args", [["--evaluator", "proxy:nonexistent"], ["--evaluator", "table", "--set", "train.epochs=1"]],
                         ids=["unknown-proxy", "table-mismatch"])
def test_a_set_up_refused_by_the_first_run_leaves_no_compare_folder(tmp_path, args):
    """Issue 24, defect 7 for compare: one line, exit 2, and no folder under --logdir."""
    logdir = tmp_path / "cmp"
    result = CliRunner().invoke(app, ["compare", "--agents", "random", "--budget", "3", "--seeds", "1",
                                      "--logdir", str(logdir), *args])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("error: ")
    assert not logdir.exists()


def test_bench_search_states_its_wall_time_only_for_runs_it_made():
    """A page built wholly from another command's runs must not quote a wall time as if it ran them."""
    from nas_gym.runs.bench_search import wall_note

    assert wall_note(3.2, 950, 950).startswith("no run was made here: 950 of the 950 runs were finished runs read")
    assert wall_note(12.4, 50, 100).startswith("12 minutes wall time for the runs made here; 50 of the 100 runs")
    assert wall_note(12.4, 0, 100) == "12 minutes wall time."
