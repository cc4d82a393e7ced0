"""`nas-gym compare`: equal budgets, summary statistics, a real PNG."""

import csv
import math

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nas_gym.cli import app
from nas_gym.compare import best_so_far, summarise


def test_best_so_far_pads_and_accumulates():
    assert best_so_far([0.2, 0.5, 0.4], 5).tolist() == [0.2, 0.5, 0.5, 0.5, 0.5]
    assert best_so_far([0.1, 0.3, 0.2, 0.9], 2).tolist() == [0.1, 0.3]


def test_summary_statistics_against_hand_computed():
    scores = np.linspace(0.0, 1.0, 101)  # top 1% threshold = 0.99
    runs = [[0.5, 0.995, 0.2], [0.3, 0.4, 0.6]]
    s = summarise("a", runs, 3, scores)
    assert s.evals_to_top == [2, None]
    assert s.regret == pytest.approx((1.0 - 0.995 + 1.0 - 0.6) / 2)
    assert math.isinf(s.median_evals_to_top), "one of two seeds never got there: the median is unknown"
    assert summarise("b", [[0.995], [0.999], [0.1]], 1, scores).median_evals_to_top == 1.0


def test_compare_through_cli(tmp_path):
    result = CliRunner().invoke(app, ["compare", "--agents", "random,evolution,qlearning", "--config", "mnist1d-tiny",
                                      "--evaluator", "synthetic", "--budget", "30", "--seeds", "2",
                                      "--logdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Optimum of the space" in result.output and "evolution" in result.output
    with Image.open(tmp_path / "comparison.png") as img:
        img.load()
        assert img.size == (800, 500)
    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert len(rows) == 3 * 2 * 30
    assert len(list((tmp_path / "random").iterdir())) == 2, "one run folder per seed"


def test_compare_rejects_unknown_agent_before_running(tmp_path):
    result = CliRunner().invoke(app, ["compare", "--agents", "random,nope", "--evaluator", "synthetic",
                                      "--logdir", str(tmp_path)])
    assert result.exit_code == 2 and "unknown agent 'nope'" in result.output
    assert not (tmp_path / "random").exists()


def test_compare_on_the_table_reports_the_simulated_clock(tmp_path):
    """With the table, each run is charged the recorded training seconds of every distinct
    architecture it evaluated (repeats are cache hits), as NAS-Bench-201 charges simulated time."""
    from nas_gym.compare import run_comparison, table_rows
    from nas_gym.config import load_config
    from nas_gym.evaluators.table import TableEvaluator

    cfg = load_config("mnist1d-tiny")
    summaries, _ = run_comparison(cfg, ["random"], 15, 2, tmp_path, evaluator="table")
    (random_summary,) = summaries
    for seed, charged in enumerate(random_summary.train_seconds):
        (run,) = [p for p in (tmp_path / "random").iterdir() if f"-s{seed}-" in p.name]
        archs = {r["arch"] for r in csv.DictReader((run / "evaluations.csv").open())}
        table = TableEvaluator(cfg, run_seed=seed)  # the training seed drawn per architecture follows the run's
        assert charged == pytest.approx(sum(table.evaluate(a).train_seconds for a in archs))
    assert table_rows(summaries)[0]["train s / run"] == f"{np.mean(random_summary.train_seconds):.0f}"
