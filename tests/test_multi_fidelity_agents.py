"""Multi-fidelity agents (sh, asha, hyperband, bohb) on small tables with learning curves, written
in tmp_path: every evaluation goes through the env at a chosen epoch, each agent pays exactly the
epochs it reached, and a table without curves is refused in one line."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import nas_gym  # noqa: F401  (registers the env)
from nas_gym.agents.base import AgentError, resolve_agent
from nas_gym.agents.fidelity import play_at, rung_epochs
from nas_gym.benchmarks.header import make_header
from nas_gym.cli import app
from nas_gym.config import load_config
from nas_gym.envs.nas_env import FidelityError
from nas_gym.evaluators import table as table_module
from nas_gym.evaluators.base import EvalResult
from nas_gym.evaluators.synthetic import SyntheticEvaluator
from nas_gym.evaluators.table import TableEvaluator, make_row, write_table
from nas_gym.runs.recorder import RecordEpisodes, SearchLog

EPOCHS = 4
AGENTS = ["sh", "asha", "hyperband", "bohb", "smac_hb"]
RESUMABLE = ["sh", "asha", "hyperband", "bohb"]  # smac_hb: SMAC restores no random state (docs/searchers.md)
HPARAMS = {"sh": {"eta": 2, "archs": 8}, "asha": {"eta": 2}, "hyperband": {"eta": 2}, "bohb": {"eta": 2, "startup_trials": 4},
           "smac_hb": {"eta": 2, "initial_design": 4}}
CHAIN = {"space": {"ops": ["conv3-16", "conv5-16", "conv3-32", "maxpool"], "max_depth": 3},
         "train": {"epochs": EPOCHS}}
CELL = {"train": {"epochs": EPOCHS}}


def _row(arch, rng, curves: bool):
    results, curve = [], {k: [] for k in ("val_acc", "test_acc", "train_loss", "train_seconds")}
    base = rng.uniform(0.2, 0.6)
    for _ in (0, 1):
        val = [min(1.0, base + 0.06 * e + rng.normal(0, 0.02)) for e in range(EPOCHS)]
        secs = [round(float(s), 4) for s in np.cumsum(rng.uniform(0.1, 0.3, size=EPOCHS))]
        curve["val_acc"].append(val)
        curve["test_acc"].append([v - 0.01 for v in val])
        curve["train_loss"].append([1.0 / (e + 1) for e in range(EPOCHS)])
        curve["train_seconds"].append(secs)
        results.append(EvalResult(arch=arch.text(), val_acc=val[-1], test_acc=val[-1] - 0.01, params=1, flops=1,
                                  train_seconds=secs[-1], train_loss=1.0 / EPOCHS))
    row = make_row(arch, results)
    return {**row, "curves": curve} if curves else row


def _preset(name: str, base: str, sections: dict):
    """The config ``name``: preset ``base`` with ``sections`` over it."""
    cfg = load_config(base, {f"{s}.{k}": v for s, kv in sections.items() for k, v in kv.items()})
    return cfg.model_copy(update={"name": name})


def _write(folder: Path, cfg, curves: bool) -> Path:
    rng = np.random.default_rng(0)
    rows = [_row(a, rng, curves) for a in {a.key(): a for a in cfg.search_space().enumerate()}.values()]
    path = folder / f"{cfg.name}.jsonl.gz"
    write_table(path, make_header(cfg, [0, 1], rows, 1), rows)
    return path


def _curve_table(tmp_path_factory, name: str, base: str, sections: dict):
    cfg = _preset(name, base, sections)
    return cfg, _write(tmp_path_factory.mktemp(name), cfg, curves=True)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """(config, table path): a 4-op layer chain of depth 3 (76 distinct architectures), 4-epoch curves, 2 seeds."""
    return _curve_table(tmp_path_factory, "curves-chain", "mnist1d-tiny", CHAIN)


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    """(config, table path): the 5,044 distinct cells, 4-epoch curves, 2 seeds."""
    return _curve_table(tmp_path_factory, "curves-cell", "mnist1d-cell", CELL)


def _curves(cfg, path: Path) -> dict[str, dict]:
    """Canonical key -> curves, read from the file itself (not through the evaluator)."""
    space = cfg.search_space()
    with gzip.open(path, "rt") as f:
        f.readline()
        return {space.parse(r["arch"]).key(): r["curves"] for r in map(json.loads, f)}


def _run(cfg, path: Path, agent: str, episodes: int, seed: int = 0):
    """Run ``agent`` on a recorded env over seed 0 of the table; returns (records, evaluator)."""
    evaluator = TableEvaluator(cfg, seed=0, path=path)
    log = SearchLog(None)
    env = RecordEpisodes(gym.make("NasGym/Cell-v0", config=cfg, evaluator=evaluator), log)
    resolve_agent(agent)(env, seed=seed, hparams=HPARAMS[agent]).learn(episodes)
    return log.records, evaluator


@pytest.mark.parametrize("agent", AGENTS)
def test_same_seed_same_run(chain, agent):
    cfg, path = chain
    runs = [[(r.arch, r.epochs, r.reward) for r in _run(cfg, path, agent, 30, seed)[0]] for seed in (0, 0, 1)]
    assert len(runs[0]) == 30 and runs[0] == runs[1]
    assert runs[0] != runs[2]


@pytest.mark.parametrize("space", ["chain", pytest.param("cell", marks=pytest.mark.slow)])
@pytest.mark.parametrize("agent", AGENTS)
def test_each_agent_pays_exactly_the_epochs_it_reached(request, agent, space):
    cfg, path = request.getfixturevalue(space)
    records, evaluator = _run(cfg, path, agent, 40)
    curves, parse = _curves(cfg, path), cfg.search_space().parse
    reached: dict[str, int] = {}
    for rec in records:
        key = parse(rec.arch).key()
        assert rec.epochs is not None and rec.val_acc == curves[key]["val_acc"][0][rec.epochs - 1]
        reached[key] = max(reached.get(key, 0), rec.epochs)
    assert len({e for e in (r.epochs for r in records)}) > 1, "a multi-fidelity agent asks at several epochs"
    want = sum(curves[k]["train_seconds"][0][e - 1] for k, e in reached.items())
    assert evaluator.stats.train_seconds == pytest.approx(want)
    assert evaluator.stats.evaluations == len(records) == 40


def test_sh_keeps_the_best_1_over_eta_at_each_rung(chain):
    cfg, path = chain
    eta, archs = 2, 8
    records, _ = _run(cfg, path, "sh", 2 * (8 + 4 + 2))  # two whole brackets
    rungs = rung_epochs(1, EPOCHS, eta)
    segments: list[list] = []  # consecutive records at one epoch count: one rung of one bracket
    for rec in records:
        if not segments or segments[-1][0].epochs != rec.epochs:
            segments.append([])
        segments[-1].append(rec)
    assert [s[0].epochs for s in segments] == rungs * 2
    for rung, nxt in zip(segments, segments[1:], strict=False):
        if nxt[0].epochs < rung[0].epochs:  # a new bracket
            assert len(nxt) == archs
            continue
        kept = {r.arch for r in nxt}
        assert len(kept) == max(1, len(rung) // eta) and kept <= {r.arch for r in rung}
        dropped = [r.reward for r in rung if r.arch not in kept]
        assert min(r.reward for r in rung if r.arch in kept) >= max(dropped)


def test_asha_promotes_only_from_the_top_of_a_rung(chain):
    cfg, path = chain
    eta = 2
    records, _ = _run(cfg, path, "asha", 60)
    rungs = rung_epochs(1, EPOCHS, eta)
    seen: dict[int, dict[str, float]] = {e: {} for e in rungs}
    promoted = 0
    for rec in records:
        k = rungs.index(rec.epochs)
        if k > 0:  # at the time it was asked, it was in the top 1/eta of the rung below
            below = seen[rungs[k - 1]]
            top = sorted(below.values(), reverse=True)[: len(below) // eta]
            assert rec.arch in below and below[rec.arch] >= top[-1]
            promoted += 1
        seen[rec.epochs][rec.arch] = rec.reward
    assert promoted and seen[rungs[-1]], "some architectures reached the top rung"


def test_play_at_and_the_env_option(chain):
    cfg, path = chain
    ev = TableEvaluator(cfg, seed=1, path=path)
    env = gym.make("NasGym/Cell-v0", config=cfg, evaluator=ev)
    arch = ev.space.sample(np.random.default_rng(0))
    curve = _curves(cfg, path)[arch.key()]
    reward, info = play_at(env, arch, 2)
    assert info["epochs"] == 2 and info["val_acc"] == reward == curve["val_acc"][1][1]
    _, info = play_at(env, arch, None)  # back to the evaluator's default: the last epoch, no epochs key
    assert "epochs" not in info and ev.stats.train_seconds == pytest.approx(curve["train_seconds"][1][-1])
    with pytest.raises(FidelityError, match=r"epochs=9: the evaluator answers after 1\.\.4 epochs"):
        env.reset(options={"epochs": 9})
    synthetic = gym.make("NasGym/Cell-v0", config=cfg, evaluator=SyntheticEvaluator(cfg.search_space()))
    with pytest.raises(FidelityError, match="cannot answer at a chosen number of epochs"):
        synthetic.reset(options={"epochs": 1})


@pytest.mark.parametrize("agent", AGENTS)
def test_a_table_without_curves_is_refused_in_one_line(tmp_path, agent):
    cfg = _preset("flat-chain", "mnist1d-tiny", CHAIN)
    path = _write(tmp_path, cfg, curves=False)
    env = gym.make("NasGym/Cell-v0", config=cfg, evaluator=TableEvaluator(cfg, path=path))
    with pytest.raises(FidelityError, match=rf"^agent {agent}: table flat-chain.jsonl.gz has no learning curves") as e:
        resolve_agent(agent)(env, seed=0, hparams={})
    assert "\n" not in str(e.value)
    with pytest.raises(FidelityError, match="flat-chain.jsonl.gz has no learning curves"):
        env.reset(options={"epochs": 1})


@pytest.mark.parametrize("preset", ["mnist1d-tiny", "mnist1d-cell"])
def test_shipped_tables_without_curves_are_refused_by_the_cli(tmp_path, preset):
    if table_module.load_table(table_module.find_table(load_config(preset))).max_epochs is not None:
        pytest.skip(f"the shipped {preset} table has learning curves now")
    result = CliRunner().invoke(app, ["search", "--agent", "sh", "--config", preset, "--evaluator", "table",
                                      "--episodes", "3", "--logdir", str(tmp_path)])
    assert result.exit_code == 2
    assert f"agent sh: table {preset}.jsonl.gz has no learning curves" in " ".join(result.output.split())


def test_search_with_sh_end_to_end(tmp_path, monkeypatch):
    folder = tmp_path / "tables"
    folder.mkdir()
    cfg = _preset("curvy", "mnist1d-tiny", CHAIN)
    path = _write(folder, cfg, curves=True)
    monkeypatch.setattr(table_module, "TABLE_DIR", folder)  # where a preset's table is looked for
    preset = tmp_path / "curvy.yaml"
    preset.write_text(yaml.safe_dump(cfg.model_dump(mode="json", include={"name", "space", "data", "train"})))
    result = CliRunner().invoke(app, ["search", "--agent", "sh", "--config", str(preset), "--evaluator", "table",
                                      "--episodes", "14", "--hparams", "{eta: 2, archs: 8}", "--seed", "3",
                                      "--logdir", str(tmp_path / "runs")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    rows = list(csv.DictReader((run_dir / "evaluations.csv").open()))
    assert [int(r["epochs"]) for r in rows] == [1] * 8 + [2] * 4 + [4] * 2
    curves, parse = _curves(cfg, path), cfg.search_space().parse
    ev = TableEvaluator(cfg, path=path, run_seed=3)  # the seed each architecture drew in the run
    for r in rows:
        arch = parse(r["arch"])
        assert float(r["val_acc"]) == pytest.approx(curves[arch.key()]["val_acc"][ev.table.seeds.index(
            ev.drawn_seed(arch))][int(r["epochs"]) - 1], abs=1e-6)


def test_sh_asked_while_a_rung_waits_starts_the_next_bracket(chain):
    """With several workers, asks outrun results: sh then opens another bracket, never a rung early."""
    cfg, path = chain
    env = gym.make("NasGym/Cell-v0", config=cfg, evaluator=TableEvaluator(cfg, seed=0, path=path))
    sh = resolve_agent("sh")(env, seed=0, hparams={"eta": 2, "archs": 3})
    jobs = []
    for _ in range(4):
        jobs.append((sh.ask(), sh.asked_epochs))
    assert [e for _, e in jobs] == [1, 1, 1, 1] and len(sh.brackets) == 2
    for arch, epochs in jobs[:3]:  # the first bracket's rung completes: its best goes on to 2 epochs
        sh.tell(arch, *play_at(env, arch, epochs))
    best = max(jobs[:3], key=lambda j: play_at(env, j[0], 1)[0])[0]
    assert sh.ask().key() == best.key() and sh.asked_epochs == 2


def test_rung_epochs():
    assert rung_epochs(1, 27, 3) == [1, 3, 9, 27]
    assert rung_epochs(1, 4, 2) == [1, 2, 4]
    assert rung_epochs(1, 3, 3) == [1, 3]
    assert rung_epochs(2, 4, 3) == [4]  # 4 / 3 is below min_epochs: the top rung alone


def test_hyperband_without_optuna_names_the_extra(chain, monkeypatch):
    import sys

    cfg, path = chain
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    env = gym.make("NasGym/Cell-v0", config=cfg, evaluator=TableEvaluator(cfg, path=path))
    with pytest.raises(AgentError, match=r"need Optuna: pip install 'nas-gym\[optuna\]'"):
        resolve_agent("bohb")(env, seed=0, hparams={})


@pytest.mark.parametrize("agent", ["hyperband", "bohb"])
def test_optuna_agents_play_only_new_results(chain, agent):
    """A trial that repeats an architecture is answered from the earlier episodes: while the space
    has new (architecture, epochs) pairs, no episode repeats one."""
    cfg, path = chain
    records, evaluator = _run(cfg, path, agent, 80)
    parse = cfg.search_space().parse
    jobs = [(parse(r.arch).key(), r.epochs) for r in records]
    assert len(set(jobs)) == len(jobs) == 80 and evaluator.stats.cache_hits == 0


def test_a_table_file_of_ones_own_serves_the_cli(tmp_path):
    """``evaluator.table_file`` points the CLI at a table built elsewhere (not in the package), checked
    against the preset like a shipped one; a missing file or a non-table kind stops in one line."""
    cfg = _preset("own-curves", "mnist1d-tiny", CHAIN)
    path = _write(tmp_path, cfg, curves=True)
    preset = tmp_path / "own-curves.yaml"
    preset.write_text(yaml.safe_dump(cfg.model_dump(mode="json", include={"name", "space", "data", "train"})))

    def search(*extra: str, logdir: str = "runs"):
        return CliRunner().invoke(app, ["search", "--agent", "asha", "--config", str(preset), "--episodes", "10",
                                        "--logdir", str(tmp_path / logdir), *extra])

    result = search("--evaluator", "table", "--set", f"evaluator.table_file={path}")
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    rows = list(csv.DictReader((run_dir / "evaluations.csv").open()))
    assert len(rows) == 10 and {int(r["epochs"]) for r in rows} <= {1, 2, 4}
    missing = search("--evaluator", "table", "--set", f"evaluator.table_file={tmp_path / 'nope.jsonl.gz'}", logdir="m")
    assert missing.exit_code == 2 and "nope.jsonl.gz" in missing.output
    assert len(missing.output.strip().splitlines()) == 1 and not (tmp_path / "m").exists()
    wrong = search("--evaluator", "synthetic", "--set", f"evaluator.table_file={path}", logdir="w")
    assert wrong.exit_code == 2 and "table_file is read by the table evaluator only" in " ".join(wrong.output.split())
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("agent", RESUMABLE)
def test_checkpoint_resumes_exactly(chain, tmp_path, agent):
    """save after 17 episodes, load into an agent made with another seed, go on: the same
    episodes (architecture, epochs, reward) as one uninterrupted run of 40."""
    cfg, path = chain

    def env_and_log():
        log = SearchLog(None)
        return RecordEpisodes(gym.make("NasGym/Cell-v0", config=cfg, evaluator=TableEvaluator(cfg, seed=0, path=path)), log), log

    whole_env, whole = env_and_log()
    resolve_agent(agent)(whole_env, seed=3, hparams=HPARAMS[agent]).learn(40)
    env, log = env_and_log()
    first = resolve_agent(agent)(env, seed=3, hparams=HPARAMS[agent])
    first.learn(17)
    first.save(tmp_path / "agent")
    resumed = resolve_agent(agent)(env, seed=99, hparams=HPARAMS[agent])
    resumed.load(tmp_path / "agent")
    resumed.learn(23)
    assert type(resumed).resumable
    assert [(r.arch, r.epochs, r.reward) for r in log.records] == [(r.arch, r.epochs, r.reward) for r in whole.records]
    other = dict(HPARAMS[agent], eta=HPARAMS[agent].get("eta", 3) + 1)
    with pytest.raises(AgentError, match="saved with hyperparameters"):
        resolve_agent(agent)(env, seed=3, hparams=other).load(tmp_path / "agent")


@pytest.mark.parametrize("agent", ["sh", "hyperband"])
def test_interrupted_search_on_the_shipped_curve_table_resumes_like_an_uninterrupted_one(tmp_path, agent):
    """nas-gym search's own checkpoints (signed run folder, the agent's save/load), on mf-chain."""
    from nas_gym.runs.search import SearchInterrupted, run_search
    from tests.test_resume import rows_of

    cfg = load_config("mf-chain", {"evaluator.kind": "table"})
    whole = run_search(cfg, agent, 30, 0, tmp_path / "whole", checkpoint_every=10).run_dir

    def stop(log) -> None:
        if log.episodes == 17:
            raise KeyboardInterrupt

    with pytest.raises(SearchInterrupted) as stopped:
        run_search(cfg, agent, 30, 0, tmp_path / "runs", on_episode=stop, checkpoint_every=10)
    assert stopped.value.episodes_done == 10
    summary = run_search(cfg, agent, 30, 0, tmp_path / "unused", checkpoint_every=10, resume=stopped.value.run_dir)
    assert summary.resumed_from == 10
    keep = ("episode", "arch", "reward", "epochs")
    assert [{k: r[k] for k in keep} for r in rows_of(stopped.value.run_dir)] == [{k: r[k] for k in keep} for r in rows_of(whole)]


def test_smac_hb_goes_on_when_smac_runs_out_of_configurations(tmp_path_factory):
    """A 6-chain space (27 configurations of SMAC's 3 decisions): SMAC soon has none left to
    propose; the agent then plays chains not yet played at the top budget, and the search goes on."""
    cfg, path = _curve_table(tmp_path_factory, "six-chain", "mnist1d-tiny",
                             {"space": {"ops": ["conv3-16", "conv5-16"], "max_depth": 2}, "train": {"epochs": EPOCHS}})
    records, _ = _run(cfg, path, "smac_hb", 40)
    assert len(records) == 40 and {r.epochs for r in records} >= {EPOCHS}
    tops = [r.arch for r in records if r.epochs == EPOCHS]
    assert len(set(tops)) == 6, "every chain reached the top budget"
