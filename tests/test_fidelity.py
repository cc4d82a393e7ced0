"""Multi-fidelity: the fidelity knob, successive halving (a searcher, in ``agents``) and the
multi-fidelity evaluator."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import nas_gym  # noqa: F401  (registers the env)
from nas_gym.agents.successive_halving import SuccessiveHalving, training_factory
from nas_gym.config import ConfigError, load_config
from nas_gym.evaluators.base import EvalResult, EvalStats, Evaluator, EvaluatorBase
from nas_gym.evaluators.multi_fidelity import MultiFidelityEvaluator, with_fidelity
from nas_gym.evaluators.synthetic import SyntheticEvaluator
from nas_gym.spaces.layer_chain.chain import Chain

PRESET = "mnist1d-tiny"


class FakeEvaluator(EvaluatorBase):
    """Score = the synthetic score plus a budget-dependent error that shrinks with the budget,
    so low budgets mis-rank and high budgets rank like the truth; costs ``budget`` seconds, a
    repeat nothing (as a cache hit)."""

    def __init__(self, budget: float, truth: SyntheticEvaluator, fail: str | None = None) -> None:
        self.budget, self.truth, self.fail = budget, truth, fail
        self.space, self.num_classes = truth.space, truth.num_classes
        self.stats = EvalStats()
        self.calls: list[str] = []
        self._seen: set[str] = set()

    def evaluate(self, arch: Chain) -> EvalResult:
        text = arch.text()
        self.calls.append(text)
        noise = ((zlib.crc32(text.encode()) % 1000) / 1000 - 0.5) * 0.2 / self.budget
        if text == self.fail:
            result = EvalResult.failure(text, "nan_loss", train_seconds=self.budget)
        else:
            result = EvalResult(arch=text, val_acc=self.truth.score(arch) + noise, params=1, flops=1,
                                train_seconds=self.budget, fidelity=self.budget)
        self.stats.charge(result, cached=text in self._seen)
        self._seen.add(text)
        return result

    def evaluate_many(self, archs: Sequence[Chain]) -> list[EvalResult]:
        return [self.evaluate(a) for a in archs]

    def state(self) -> dict[str, Any]:
        return {**super().state(), "seen": sorted(self._seen)}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._seen = set(state["seen"])


@pytest.fixture
def truth() -> SyntheticEvaluator:
    return SyntheticEvaluator(load_config(PRESET).search_space(), seed=3)


@pytest.fixture
def archs(truth) -> list[Chain]:
    return list(truth.space.enumerate())[:81]


# -- with_fidelity -------------------------------------------------------------------------------
def test_with_fidelity_changes_only_the_budget():
    cfg = load_config(PRESET)
    more, less_data = with_fidelity(cfg, epochs=cfg.train.epochs + 7), with_fidelity(cfg, train_fraction=0.25)
    assert more.train.epochs == cfg.train.epochs + 7 and more.name == cfg.name and more.space == cfg.space
    assert less_data.data.train_fraction == 0.25 and less_data.train == cfg.train
    assert len({cfg.context_hash(), more.context_hash(), less_data.context_hash()}) == 3
    assert with_fidelity(cfg, epochs=float(cfg.train.epochs)).context_hash() == cfg.context_hash()


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 2.5}, "whole number"),
    ({"epochs": 0}, "train.epochs"),
    ({"train_fraction": 1.5}, "data.train_fraction"),
], ids=["fractional-epochs", "zero-epochs", "fraction-above-1"])
def test_with_fidelity_rejects_bad_budgets(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        with_fidelity(load_config(PRESET), **kwargs)


# -- successive halving --------------------------------------------------------------------------
@pytest.mark.parametrize("eta, lo, hi, budgets", [
    (3, 1, 27, [1, 3, 9, 27]),
    (3, 2, 27, [3, 9, 27]),
    (2, 1, 8, [1, 2, 4, 8]),
    (3, 0.1, 1.0, [1 / 9, 1 / 3, 1.0]),
    (3, 5, 5, [5]),
], ids=["eta3", "top-is-max", "eta2", "fractions", "one-rung"])
def test_budgets_end_at_the_maximum(eta, lo, hi, budgets):
    assert SuccessiveHalving(lambda b: None, eta, lo, hi).budgets == pytest.approx(budgets)


def test_halving_keeps_a_third_per_rung_and_finds_the_best(truth, archs):
    made: list[float] = []

    def factory(budget: float) -> Evaluator:
        made.append(budget)
        return FakeEvaluator(budget, truth)

    sh = SuccessiveHalving(factory, eta=3, min_budget=1, max_budget=27)
    out = sh.run(archs + archs[:5])  # repeats are dropped
    assert [len(r.results) for r in out.rungs] == [81, 27, 9, 3]
    assert made == [1, 3, 9, 27]
    assert len(out.ranking) == 81 and {a for a, _ in out.ranking} == set(archs)
    best = max(archs, key=truth.score)
    assert out.best[0] == best and out.best[1].fidelity == 27
    top_rung = [a for a, _ in out.rungs[-1].results]
    assert [a for a, _ in out.ranking[:3]] == sorted(top_rung, key=lambda a: -dict(out.rungs[-1].results)[a].val_acc)
    assert out.train_seconds == pytest.approx(81 * 1 + 27 * 3 + 9 * 9 + 3 * 27)


def test_halving_continues_a_single_survivor_to_the_top_and_sinks_failures(truth, archs):
    fail = archs[0].text()
    sh = SuccessiveHalving(lambda b: FakeEvaluator(b, truth, fail=fail), eta=3, min_budget=1, max_budget=27)
    out = sh.run(archs[:5])
    assert [len(r.results) for r in out.rungs] == [5, 1, 1, 1]
    assert out.best[1].fidelity == 27
    assert out.ranking[-1][0].text() == fail


def test_halving_with_the_synthetic_evaluator(truth, archs):
    out = SuccessiveHalving(lambda b: SyntheticEvaluator(truth.space, seed=3), eta=3, max_budget=9).run(archs)
    assert out.best[0] == max(archs, key=truth.score)


# -- the multi-fidelity evaluator ----------------------------------------------------------------
def test_env_gets_low_fidelity_and_the_top_fraction_is_promoted(truth, archs):
    low, high = FakeEvaluator(1, truth), FakeEvaluator(27, truth)
    mf = MultiFidelityEvaluator(low, high, promote_top=0.2)
    results = [mf.evaluate(a) for a in archs[:40]]
    assert all(r.fidelity == 1 for r in results)  # the reward comes from the cheap evaluator
    assert mf.promoted[0] == archs[0]  # the first is in the top of the one seen
    for a in mf.promoted:  # each promoted one was in the top 20% when it was seen
        i = archs.index(a)
        seen = sorted((low_r.val_acc for low_r in results[: i + 1]), reverse=True)
        assert results[i].val_acc >= seen[max(0, -(-len(seen) // 5) - 1)]
    assert 1 < len(mf.promoted) < 20 and high.calls == [a.text() for a in mf.promoted]
    mf.evaluate(mf.promoted[0])  # a repeat is not promoted twice
    assert high.calls == [a.text() for a in mf.promoted]
    assert mf.stats.train_seconds == pytest.approx(low.stats.train_seconds + high.stats.train_seconds)
    assert mf.stats.evaluations == low.stats.evaluations + high.stats.evaluations


def test_leaderboard_ranks_confirmed_results_first(truth, archs):
    fail = archs[3].text()
    mf = MultiFidelityEvaluator(FakeEvaluator(1, truth, fail=fail), FakeEvaluator(27, truth), promote_top=0.1)
    assert mf.best() is None
    mf.evaluate_many(archs[:30])
    board = mf.leaderboard()
    assert len(board) == 30 and len(mf.leaderboard(5)) == 5
    confirmed = [e for e in board if e.high is not None]
    assert board[: len(confirmed)] == confirmed and board[-1].arch.text() == fail
    assert [e.result.val_acc for e in confirmed] == sorted((e.result.val_acc for e in confirmed), reverse=True)
    assert mf.best() == board[0] and board[0].result.fidelity == 27


def test_a_resumed_multi_fidelity_evaluator_continues_as_if_never_stopped(truth, archs):
    """Its state (through JSON, as in a checkpoint) carries both evaluators' charges, every
    low result and every promotion: a fresh evaluator that loads it ranks, promotes and charges
    the rest exactly as the one that never stopped."""
    def fresh() -> MultiFidelityEvaluator:
        return MultiFidelityEvaluator(FakeEvaluator(1, truth), FakeEvaluator(27, truth), promote_top=0.2)

    def board(mf: MultiFidelityEvaluator) -> list[tuple]:  # NaN losses never compare equal: compare the rest
        return [(e.arch, e.low.val_acc, e.high and (e.high.val_acc, e.high.fidelity)) for e in mf.leaderboard()]

    first, second = archs[:30], archs[20:60]  # overlapping: repeats after the stop are cache hits
    straight = fresh()
    straight.evaluate_many(first)
    resumed = fresh()
    resumed.load_state(json.loads(json.dumps(straight.state())))
    assert resumed.stats == straight.stats and resumed.promoted == straight.promoted
    assert board(resumed) == board(straight)
    confirmed_before = len(straight.high.calls)
    assert [r.val_acc for r in straight.evaluate_many(second)] == [r.val_acc for r in resumed.evaluate_many(second)]
    assert resumed.stats == straight.stats and resumed.stats.evaluations == 70 + len(straight.promoted)
    assert resumed.promoted == straight.promoted and resumed.high.calls == straight.high.calls[confirmed_before:]
    assert board(resumed) == board(straight)


def test_multi_fidelity_evaluator_passes_the_env_checkers():
    cfg = load_config(PRESET)
    space = cfg.search_space()
    mf = MultiFidelityEvaluator(SyntheticEvaluator(space, seed=1), SyntheticEvaluator(space, seed=2), promote_top=0.5)
    assert isinstance(mf, Evaluator)
    env = gym.make("NasGym/LayerChain-v0", config=cfg, evaluator=mf)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    assert mf.leaderboard()


def test_rejects_bad_promotion_and_mismatched_spaces(truth):
    with pytest.raises(ValueError, match="promote_top"):
        MultiFidelityEvaluator(truth, truth, promote_top=0)
    other = SyntheticEvaluator(load_config("mnist1d").search_space())
    with pytest.raises(ValueError, match="different search spaces"):
        MultiFidelityEvaluator(truth, other)


# -- real training ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_each_fidelity_is_trained_and_cached_separately(tmp_path):
    from nas_gym.storage.cache import ResultCache

    cfg = load_config(PRESET, {"runtime.device": "cpu"})
    cache = ResultCache(tmp_path / "c.sqlite")
    make = training_factory(cfg, "epochs", cache=cache)
    arch = Chain.parse("conv3-16|maxpool")
    low, high = make(1), make(2)
    assert low.context != high.context
    r_low, r_high = low.evaluate(arch), high.evaluate(arch)
    assert (r_low.fidelity, r_high.fidelity) == (1.0, 2.0) and r_low.ok and r_high.ok
    assert low.stats.trained == high.stats.trained == 1 and len(cache) == 2
    again = make(1)
    assert again.evaluate(arch) == r_low and again.stats.cache_hits == 1


# -- the multi-fidelity mode of a preset (evaluator.high_epochs) ----------------------------------
@pytest.mark.parametrize("overrides, match", [
    ({"evaluator.high_epochs": 2}, "more epochs than train.epochs"),
    ({"evaluator.high_epochs": 8, "evaluator.kind": "table"}, "needs evaluator kind 'train'"),
    ({"evaluator.promote_top": 0}, "evaluator.promote_top"),
], ids=["not-higher", "not-train", "bad-fraction"])
def test_multi_fidelity_config_is_checked(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config("mnist1d-tiny", overrides)


def test_make_evaluator_builds_two_fidelities_with_separate_cache_keys():
    from nas_gym.evaluators import make_evaluator

    cfg = load_config("mnist1d-tiny", {"evaluator.high_epochs": 6, "evaluator.promote_top": 0.2,
                                       "evaluator.cache": None})
    ev = make_evaluator(cfg)
    assert isinstance(ev, MultiFidelityEvaluator) and ev.promote_top == 0.2
    assert (ev.low.config.train.epochs, ev.high.config.train.epochs) == (2, 6)
    assert ev.low.context != ev.high.context


@pytest.mark.slow
def test_search_leaderboard_ranks_by_the_highest_fidelity(tmp_path):
    """Through the CLI: rewards at 1 epoch, the best quarter re-trained at 3; the leaderboard
    puts the confirmed architectures first, with their long-training accuracy."""
    import csv

    from typer.testing import CliRunner

    from nas_gym.cli import app
    from nas_gym.runs.leaderboard import read_entries

    result = CliRunner().invoke(app, [
        "search", "--agent", "random", "--config", "mnist1d-tiny", "--episodes", "6", "--logdir", str(tmp_path),
        "--set", "train.epochs=1", "--set", "evaluator.high_epochs=3", "--set", "evaluator.promote_top=0.25",
        "--set", f"evaluator.cache={tmp_path / 'c.sqlite'}"])
    assert result.exit_code == 0, result.output
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    with (run / "confirmed.csv").open() as f:
        confirmed = {r["arch"]: r for r in csv.DictReader(f)}
    with (run / "evaluations.csv").open() as f:
        low = {r["arch"]: float(r["val_acc"]) for r in csv.DictReader(f)}
    assert 1 <= len(confirmed) < len(low)
    assert all(float(r["epochs"]) == 3 and float(r["low_val_acc"]) == low[a] for a, r in confirmed.items())
    entries, _ = read_entries([run])
    n = len(confirmed)
    assert {e.arch for e in entries[:n]} == set(confirmed) and all(e.fidelity == "high" for e in entries[:n])
    assert all(e.val_acc == float(confirmed[e.arch]["val_acc"]) for e in entries[:n])
    assert all(e.fidelity == "" for e in entries[n:])
