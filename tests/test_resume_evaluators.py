"""A resumed search continues its evaluator where it stopped: the budget charged, the
architectures a table already charged, a multi-fidelity search's confirmed results.

Each search is stopped by Ctrl-C (a KeyboardInterrupt from the progress callback) after its
first checkpoint, resumed in a fresh process state (new evaluator, new agent), and compared with
the same search never stopped.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from nas_gym.config import Config, load_config
from nas_gym.evaluators.base import Evaluator
from nas_gym.evaluators.multi_fidelity import MultiFidelityEvaluator
from nas_gym.evaluators.synthetic import SyntheticEvaluator
from nas_gym.runs.leaderboard import CONFIRMED_CSV
from nas_gym.runs.search import SearchInterrupted, SearchSummary, run_search


def rows(run_dir: Path, name: str = "evaluations.csv") -> list[dict[str, str]]:
    with (run_dir / name).open(newline="") as f:
        return list(csv.DictReader(f))


def stopped_and_resumed(cfg: Config, agent: str, episodes: int, stop_at: int, every: int, logdir: Path,
                        evaluator: Callable[[], Evaluator | None] = lambda: None) -> tuple[SearchSummary, int, list[dict[str, str]]]:
    """The summary of the resumed search, the episodes checkpointed before the stop, and the
    confirmed rows on disk at the stop."""
    def stop(log) -> None:
        if log.episodes == stop_at:
            raise KeyboardInterrupt

    with pytest.raises(SearchInterrupted) as stopped:
        run_search(cfg, agent, episodes, 0, logdir, evaluator=evaluator(), on_episode=stop, checkpoint_every=every)
    run_dir = stopped.value.run_dir
    confirmed = rows(run_dir, CONFIRMED_CSV) if (run_dir / CONFIRMED_CSV).exists() else []
    summary = run_search(cfg, agent, episodes, 0, logdir, evaluator=evaluator(), checkpoint_every=every, resume=run_dir)
    return summary, stopped.value.episodes_done, confirmed


def synthetic_multi_fidelity() -> MultiFidelityEvaluator:
    space = load_config("mnist1d-tiny").search_space()
    return MultiFidelityEvaluator(SyntheticEvaluator(space, seed=1), SyntheticEvaluator(space, seed=2), promote_top=0.3)


def test_resumed_multi_fidelity_search_keeps_its_counts_and_confirmed_results(tmp_path):
    """The inner evaluators' counts used to overwrite the restored total, and confirmed.csv was
    rewritten from the fresh evaluator's memory, losing what was confirmed before the stop."""
    cfg = load_config("mnist1d-tiny", {"evaluator.kind": "synthetic"})
    straight = run_search(cfg, "evolution", 24, 0, tmp_path / "straight", evaluator=synthetic_multi_fidelity(),
                          checkpoint_every=5)
    resumed, done, confirmed_at_stop = stopped_and_resumed(cfg, "evolution", 24, 13, 5, tmp_path / "stopped",
                                                           synthetic_multi_fidelity)
    assert done == 10 and resumed.resumed_from == 10
    assert resumed.stats == straight.stats and straight.stats.evaluations > 24  # 24 rewards plus the confirmations
    confirmed = rows(resumed.run_dir, CONFIRMED_CSV)
    assert confirmed == rows(straight.run_dir, CONFIRMED_CSV)
    before = {r["arch"] for r in rows(resumed.run_dir)[:done]}
    assert {r["arch"] for r in confirmed_at_stop} & before  # some were confirmed before the stop ...
    assert {r["arch"] for r in confirmed_at_stop} <= {r["arch"] for r in confirmed}  # ... and are kept


@pytest.mark.slow
def test_resumed_multi_fidelity_training_search(tmp_path):
    """The preset's multi-fidelity mode (``evaluator.high_epochs``), trained for real on a tiny
    budget: every reward and every confirmation is counted once, across the stop."""
    cfg = load_config("mnist1d-tiny", {"train.epochs": 1, "evaluator.high_epochs": 2, "evaluator.promote_top": 0.5,
                                       "data.train_fraction": 0.05, "runtime.device": "cpu", "runtime.threads": 1,
                                       "evaluator.cache": str(tmp_path / "c.sqlite")})
    resumed, done, confirmed_at_stop = stopped_and_resumed(cfg, "random", 8, 6, 3, tmp_path / "runs")
    played, confirmed = rows(resumed.run_dir), rows(resumed.run_dir, CONFIRMED_CSV)
    assert done == 3 and len(played) == 8 and len({r["arch"] for r in played}) == 8
    assert resumed.stats.evaluations == len(played) + len(confirmed)
    assert confirmed_at_stop and {r["arch"] for r in confirmed_at_stop} <= {r["arch"] for r in confirmed}
    assert all(float(r["epochs"]) == 2 for r in confirmed)


@pytest.mark.slow
def test_resumed_table_search_charges_a_repeat_once(tmp_path):
    """The table remembers what it charged in its state, so an architecture seen before the stop
    is a free repeat after it, as in the search that never stopped (the simulated clock agrees)."""
    cfg = load_config("mnist1d-tiny", {"evaluator.kind": "table"})
    straight = run_search(cfg, "qlearning", 40, 0, tmp_path / "straight", checkpoint_every=10)
    resumed, done, _ = stopped_and_resumed(cfg, "qlearning", 40, 25, 10, tmp_path / "stopped")
    played = [r["arch"] for r in rows(resumed.run_dir)]
    assert played == [r["arch"] for r in rows(straight.run_dir)]
    assert set(played[:done]) & set(played[done:])  # repeats across the stop: the case under test
    assert dataclasses.asdict(resumed.stats) == dataclasses.asdict(straight.stats)
