"""What a multi-fidelity run hands back: its best result at the highest number of epochs it
reached, never a few-epoch score that topped the full-budget ones; repeats and the
repeats-charged accounting read the same way (nas_gym.runs.runlog.Record.beats)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas_gym.config import load_config
from nas_gym.runs.anytime import incumbent_at
from nas_gym.runs.outcome import result_of
from nas_gym.runs.reference import Reference
from nas_gym.runs.runlog import Record, RunLog, best_of, top

SPACE = load_config("mnist1d-tiny").search_space()


def rec(episode: int, arch: str, val: float, epochs: int | None, status: str = "ok") -> Record:
    return Record(episode, arch, val, val, 1, 1, status, "", epochs=epochs)


# a, b, c at 1 epoch; b and c promoted to 3; c to 8. The one-epoch 0.9 of "a" tops every later score.
RUN = [rec(1, "conv3-16", 0.90, 1), rec(2, "conv5-16", 0.60, 1), rec(3, "conv3-32", 0.70, 1),
       rec(4, "conv5-16", 0.75, 3), rec(5, "conv3-32", 0.80, 3), rec(6, "conv3-32", 0.85, 8)]


def test_the_highest_fidelity_wins_then_the_reward():
    assert best_of(RUN[:3]).episode == 1  # all at one epoch: the highest reward
    assert best_of(RUN[:4]).episode == 4  # 0.75 at 3 epochs beats 0.9 at 1
    assert best_of(RUN).episode == 6
    assert best_of([rec(1, "conv3-16", 0.5, None), rec(2, "conv5-16", 0.7, None)]).episode == 2  # no fidelity: reward alone
    assert best_of([rec(1, "conv3-16", 0.99, 8, "failed")]) is None


def test_runlog_best_and_top_follow_the_same_rule():
    log = RunLog(None)
    news = [log.add(r.reward, {"arch": r.arch, "val_acc": r.val_acc, "params": 1, "flops": 1, "status": "ok",
                               "reason": "", "epochs": r.epochs}, 0, 0)[1] for r in RUN]
    assert news == [True, False, False, True, True, True]
    assert log.best.episode == 6
    assert [(r.arch, r.epochs) for r in top(log.records)] == [("conv3-32", 8), ("conv5-16", 3), ("conv3-16", 1)]


def test_anytime_incumbent_switches_to_the_higher_fidelity():
    times = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert incumbent_at(RUN, times, [0.5, 1.0, 3.5, 4.0, 5.0, 6.0]) == [None, 0, 0, 3, 4, 5]


def test_a_multi_fidelity_row_counts_promotions_as_new_and_has_no_charged_accounting():
    ref = Reference(np.array([0.5, 0.6, 0.8]), lambda a: {"conv3-16": 0.5, "conv5-16": 0.6, "conv3-32": 0.8}[a.text()],
                    test=lambda a: {"conv3-16": 0.45, "conv5-16": 0.55, "conv3-32": 0.75}[a.text()])
    again = [*RUN, rec(7, "conv5-16", 0.75, 3)]  # the same architecture at the same epochs: a repeat
    run = result_of("sh", 0, Path("r"), again, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0], None, 10.0, SPACE)
    assert run.charged is None
    row = run.row(SPACE, ref)
    assert (row["evaluations"], row["distinct_archs"], row["repeats"]) == ("7", "3", "1")
    assert row["arch"] == "conv3-32" and float(row["test_acc"]) == pytest.approx(0.75)
    assert row["evaluations_charged"] == "" and row["test_acc_charged"] == ""
