"""`nas-gym leaderboard`: ordering, de-duplication across runs, Pareto front, failures apart."""

import csv

from typer.testing import CliRunner

from nas_gym.cli import app
from nas_gym.runs.leaderboard import pareto_front, read_entries
from nas_gym.runs.runlog import CSV_FIELDS

ROWS_A = [("conv3-16", 0.70, 100, "ok", ""), ("maxpool", 0.30, 10, "ok", ""), ("conv3-32", 0.80, 400, "ok", ""),
          ("conv5-64|conv5-64", 0.0, 9000, "failed", "nan_loss")]
ROWS_B = [("conv3-16", 0.72, 100, "ok", ""), ("conv5-16", 0.75, 150, "ok", "")]


def write_run(folder, rows, epochs=None):
    folder.mkdir(parents=True)
    with (folder / "evaluations.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for i, (arch, acc, params, status, reason) in enumerate(rows, 1):
            row = [i, arch, acc, acc, params, params * 10, status, reason, i, 0, "", 1.0, ""]
            row += [""] * (len(CSV_FIELDS) - len(row))  # later columns (sim_start, sim_finish, epochs) empty
            if epochs is not None:
                row[CSV_FIELDS.index("epochs")] = epochs[i - 1]
            w.writerow(row)


def test_a_multi_fidelity_run_ranks_results_after_more_epochs_first(tmp_path):
    """conv3-32 scored 0.9 after 1 epoch, then 0.85 after 8; maxpool 0.95 after 1 epoch only:
    full-budget results lead, and each architecture is shown by its deepest result."""
    rows = [("conv3-32", 0.90, 400, "ok", ""), ("maxpool", 0.95, 10, "ok", ""), ("conv3-32", 0.85, 400, "ok", ""),
            ("conv3-16", 0.80, 100, "ok", "")]
    write_run(tmp_path / "mf", rows, epochs=[1, 1, 8, 8])
    entries, _ = read_entries([tmp_path])
    assert [(e.arch, e.val_acc, e.epochs) for e in entries] == [("conv3-32", 0.85, 8), ("conv3-16", 0.80, 8),
                                                                 ("maxpool", 0.95, 1)]


def test_entries_ordered_and_merged_across_runs(tmp_path):
    write_run(tmp_path / "a", ROWS_A)
    write_run(tmp_path / "b", ROWS_B)
    entries, failures = read_entries([tmp_path])
    assert [e.arch for e in entries] == ["conv3-32", "conv5-16", "conv3-16", "maxpool"]
    conv = next(e for e in entries if e.arch == "conv3-16")
    assert conv.val_acc == 0.72 and conv.evaluations == 2 and conv.run == "b"
    assert [(f.arch, f.reason) for f in failures] == [("conv5-64|conv5-64", "nan_loss")]
    assert [e.arch for e in pareto_front(entries)] == ["maxpool", "conv3-16", "conv5-16", "conv3-32"]


def test_cli_leaderboard(tmp_path):
    write_run(tmp_path / "a", ROWS_A)
    result = CliRunner().invoke(app, ["leaderboard", str(tmp_path / "a"), "--top", "2"], terminal_width=200)
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index("conv3-32") < out.index("conv3-16") and "maxpool " not in out.split("failed")[0]
    assert "1 failed architectures" in out and "nan_loss" in out
    pareto = CliRunner().invoke(app, ["leaderboard", str(tmp_path / "a"), "--pareto"], terminal_width=200)
    assert "Pareto front" in pareto.output and "maxpool" in pareto.output


def test_cli_leaderboard_bad_path(tmp_path):
    result = CliRunner().invoke(app, ["leaderboard", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no evaluations.csv" in result.output
