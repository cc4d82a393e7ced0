"""scripts/make_leaderboard.py end to end on a tiny run set: what the board holds comes from the
runs, the same runs give the same bytes, more seeds run only what is missing, and a user's agent
is compared against a published board at its conditions only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas_gym.agents.base import BUILTIN_AGENTS
from nas_gym.config import load_config
from nas_gym.evaluators.table import TableEvaluator
from nas_gym.runs import leaderboard_build as tool
from nas_gym.runs.board_absent import NOT_RUN, absence_reason, answers_at_epochs
from nas_gym.runs.outcome import PROTOCOL_JSON
from nas_gym.runs.runlog import read_records
from tests.test_compare import ROOT

pytestmark = pytest.mark.slow  # a dozen short searches on the table
BUDGET = "3"  # simulated seconds: about 7 architectures of mnist1d-tiny


def build(tmp_path: Path, *extra: str, runs: str = "runs", out: str = "out") -> int:
    return tool.main(["--benchmarks", "mnist1d-tiny", "--budget-seconds", BUDGET,
                                            "--runs", str(tmp_path / runs), "--out", str(tmp_path / out), *extra])


def pick_test_acc(run_dir: Path, budget: float) -> float:
    """The test accuracy of the run's pick, recomputed from its files: the best validation among
    the evaluations whose clock is within the budget, looked up in the table."""
    clock = json.loads((run_dir / PROTOCOL_JSON).read_text())["clock"]
    records = [r for r, t in zip(read_records(run_dir), clock, strict=False) if t <= budget and r.status == "ok"]
    best = max(records, key=lambda r: (r.val_acc, -r.episode))
    cfg = load_config("mnist1d-tiny", {"evaluator.kind": "table"})
    return TableEvaluator(cfg).test_acc(cfg.search_space().parse(best.arch))


def test_board_from_runs_deterministic_and_incremental(tmp_path):
    assert build(tmp_path, "--agents", "random,evolution", "--seeds", "2") == 0
    out = tmp_path / "out"
    board = json.loads((out / "leaderboard.json").read_text())
    section = board["sections"]["mnist1d-tiny"]
    assert set(section["agents"]) == {"random", "evolution"}
    assert section["conditions"]["budget_seconds"] == float(BUDGET)
    assert len(section["conditions"]["benchmark_file"]["sha256"]) == 64
    for agent, entry in section["agents"].items():
        assert entry["seeds"] == [0, 1]
        folders = sorted(p.parent for p in (tmp_path / "runs").glob(f"mnist1d-tiny/{agent}/*/{PROTOCOL_JSON}"))
        seeds = [json.loads((f / PROTOCOL_JSON).read_text())["seed"] for f in folders]
        by_seed = dict(zip(seeds, folders, strict=True))
        assert entry["per_seed"]["test_acc"] == [pytest.approx(pick_test_acc(by_seed[s], float(BUDGET))) for s in (0, 1)]
        assert len(entry["anytime"]["test_acc"]["median"]) == len(section["conditions"]["grid_seconds"])
    assert section["agents"]["evolution"]["p_mwu_vs_random"] is not None
    page = (out / "leaderboard.md").read_text()
    assert "| evolution | 2 |" in page and "| random | 2 |" in page and "sha256" in page
    assert (out / "images" / "leaderboard-mnist1d-tiny.png").stat().st_size > 0
    evo = sorted(section["agents"]["evolution"]["per_seed"]["test_acc"])
    assert f"| evolution | {100 * (evo[0] + evo[1]) / 2:.2f}" in page.split("## At a glance")[1], "the overview's median"
    absent = section["absent"]  # every other built-in agent, with why it has no row
    assert set(absent) == set(BUILTIN_AGENTS) - {"random", "evolution"}
    assert absent["hyperband"].startswith("multi-fidelity") and absent["enas"].startswith("trains a weight-sharing")
    assert absent["ppo"] == absent["local"] == NOT_RUN
    assert "Not on this board: sh, asha, hyperband, bohb, smac_hb (multi-fidelity, and this benchmark answers after the full budget only, with no learning curves)." in page

    before = {name: (out / name).read_bytes() for name in ("leaderboard.md", "leaderboard.json")}
    assert build(tmp_path, "--agents", "random,evolution", "--seeds", "2", "--no-run") == 0
    assert {name: (out / name).read_bytes() for name in before} == before, "the same runs give the same bytes"

    assert build(tmp_path, "--agents", "random,evolution", "--seeds", "3") == 0
    assert len(list((tmp_path / "runs").glob(f"**/{PROTOCOL_JSON}"))) == 6, "only seed 2 of each agent ran"
    board = json.loads((out / "leaderboard.json").read_text())
    assert [e["seeds"] for e in board["sections"]["mnist1d-tiny"]["agents"].values()] == [[0, 1, 2]] * 2


def test_a_user_agent_against_a_published_board(tmp_path):
    assert build(tmp_path, "--agents", "random,evolution", "--seeds", "2") == 0
    published = str(tmp_path / "out" / "leaderboard.json")
    user = f"{ROOT / 'examples' / 'local_search.py'}:LocalSearch"
    assert build(tmp_path, "--agents", user, "--seeds", "2", "--against", published, runs="mine", out="mine-out") == 0
    section = json.loads((tmp_path / "mine-out" / "leaderboard.json").read_text())["sections"]["mnist1d-tiny"]
    assert set(section["agents"]) == {user, "random", "evolution"}
    assert section["agents"][user]["p_holm_vs_random"] is not None
    assert len(list((tmp_path / "mine").glob(f"**/{PROTOCOL_JSON}"))) == 2, "only the user's agent ran"
    assert "random,evolution" not in section["command"]

    other = tool.main(["--benchmarks", "mnist1d-tiny", "--budget-seconds", "2", "--agents", user,
                                             "--seeds", "1", "--runs", str(tmp_path / "mine"), "--against", published,
                                             "--out", str(tmp_path / "refused")])
    assert other == 2 and not (tmp_path / "refused").exists(), "another budget is refused, nothing written"


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert tool.main(["--benchmarks", "nope", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--benchmarks" in err and "mnist1d-tiny" in err
    assert not (tmp_path / "o").exists()


def test_surrogate_section_ranks_by_the_noise_free_mean(tmp_path):
    """No table: the pick is judged by the surrogate's mean prediction, not by the noisy draw the
    search saw (which is what picked it)."""
    from nas_gym.evaluators.surrogate import SurrogateEvaluator

    assert tool.main(["--benchmarks", "mnist1d-surrogate", "--budget-seconds", "8", "--agents",
                                            "random,evolution", "--seeds", "2", "--runs", str(tmp_path / "runs"),
                                            "--out", str(tmp_path / "out")]) == 0
    section = json.loads((tmp_path / "out" / "leaderboard.json").read_text())["sections"]["mnist1d-surrogate"]
    assert not section["conditions"]["has_test"] and section["conditions"]["has_mean"]
    cfg = load_config("mnist1d", {"evaluator.kind": "surrogate"})
    evaluator = SurrogateEvaluator(cfg)
    for folder in (tmp_path / "runs").glob(f"mnist1d-surrogate/random/*/{PROTOCOL_JSON}"):
        seed = json.loads(folder.read_text())["seed"]
        clock = json.loads(folder.read_text())["clock"]
        seen = [r for r, t in zip(read_records(folder.parent), clock, strict=False) if t <= 8.0]
        best = max(seen, key=lambda r: (r.val_acc, -r.episode))
        arch = cfg.search_space().parse(best.arch)
        mean = float(evaluator.model.predict(evaluator.space.features(arch)[None, :])[0][0])
        assert section["agents"]["random"]["per_seed"]["mean_val_acc"][seed] == pytest.approx(mean, abs=1e-6)
        assert section["agents"]["random"]["per_seed"]["mean_val_acc_charged"][seed] is not None
    assert "mean val acc % of pick (noise-free)" in (tmp_path / "out" / "leaderboard.md").read_text()


def test_multi_fidelity_section_returns_full_budget_picks(tmp_path):
    """On the curve table the successive-halving runs score most chains after a few epochs; each
    run's pick is its best at the highest epochs it reached (here all 8: the budget covers a
    bracket), judged by the table, and the repeats-charged columns are empty for them."""
    assert tool.main(["--benchmarks", "mf-chain", "--budget-seconds", "15", "--agents", "random,sh", "--seeds", "2",
                      "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    section = json.loads((tmp_path / "out" / "leaderboard.json").read_text())["sections"]["mf-chain"]
    cfg = load_config("mf-chain", {"evaluator.kind": "table"})
    table = TableEvaluator(cfg)
    for folder in sorted((tmp_path / "runs").glob(f"mf-chain/sh/*/{PROTOCOL_JSON}")):
        info = json.loads(folder.read_text())
        records = [r for r, t in zip(read_records(folder.parent), info["clock"], strict=False) if t <= 15.0]
        assert {r.epochs for r in records} >= {3, 8}, "a bracket ran"
        full = [r for r in records if r.epochs == 8]
        pick = max(full, key=lambda r: (r.val_acc, -r.episode))
        per_seed = section["agents"]["sh"]["per_seed"]
        assert per_seed["test_acc"][info["seed"]] == pytest.approx(table.test_acc(cfg.search_space().parse(pick.arch)))
        assert per_seed["test_acc_charged"][info["seed"]] is None
    assert section["agents"]["random"]["per_seed"]["test_acc_charged"][0] is not None


def test_why_an_agent_is_absent_follows_its_declarations_and_the_benchmark():
    """No ask/tell -> refused on several simulated workers; multi-fidelity -> needs curves; the
    benchmarks' own evaluators say whether they have curves."""
    from nas_gym.agents.asha import Asha
    from nas_gym.agents.random_search import RandomSearch
    from nas_gym.agents.sb3 import PPOAgent
    from nas_gym.runs import agent_board as ab

    assert absence_reason(PPOAgent, 1, True) == NOT_RUN
    assert "cannot run on 4 simulated workers" in absence_reason(PPOAgent, 4, True)
    assert absence_reason(Asha, 4, True) == absence_reason(RandomSearch, 4, False) == NOT_RUN
    assert "no learning curves" in absence_reason(Asha, 1, False)
    assert answers_at_epochs(load_config("mf-chain", {"evaluator.kind": "table"}), "table")
    assert not answers_at_epochs(load_config("mnist1d-tiny", {"evaluator.kind": "table"}), "table")
    surrogate = ab.benchmark("mnist1d-surrogate")
    assert not answers_at_epochs(ab.bench_config(surrogate, {}), surrogate.evaluator)


def test_the_overview_marks_only_what_survives_holm():
    """(+) for an agent above random search with a Holm-corrected p below 0.05, (-) below it,
    nothing within noise, an empty cell where a section has no such agent."""
    from nas_gym.runs.board_page import glance

    def entry(values, holm):
        return {"per_seed": {"test_acc": values}, "p_holm_vs_random": holm, "p_mwu_vs_random": holm}

    section = {"conditions": {"has_test": True}, "agents": {
        "random": entry([0.5, 0.6, 0.7], None), "tpe": entry([0.8, 0.9, 0.9], 0.01),
        "gp": entry([0.1, 0.2, 0.3], 0.02), "local": entry([0.9, 0.9, 0.9], 0.2)}}
    other = {"conditions": {"has_test": True}, "agents": {"random": entry([0.5], None)}}
    rows = glance({"sections": {"a": section, "b": other}}).splitlines()
    assert rows[0] == "| agent | a | b |"
    assert rows[2:] == ["| random | 60.00 | 50.00 |", "| local | 90.00 |  |", "| tpe | 90.00 (+) |  |",
                        "| gp | 20.00 (-) |  |"]
