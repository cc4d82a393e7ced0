"""Resumable searches: chunked learning, checkpoints, the recorder on resume, `--resume` end to end.

Agent and recorder logic run on the synthetic evaluator (instant); the issue's acceptance test
trains for real, in a subprocess killed with SIGKILL part way, on a budget of a few steps per
architecture.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
from typer.testing import CliRunner

from nas_gym.agents.base import resolve_agent
from nas_gym.cli import app
from nas_gym.config import load_config
from nas_gym.runs.checkpoint import MANIFEST, read_manifest
from nas_gym.runs.recorder import RecordEpisodes, SearchLog
from nas_gym.runs.search import SearchInterrupted, run_search
from tests.conftest import make_synthetic_env

REPO = Path(__file__).resolve().parent.parent
CHUNKABLE = ("random", "evolution", "qlearning")
runner = CliRunner()


def rows_of(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "evaluations.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def recorded(agent_name: str, chunks: list[int], tmp_path: Path | None = None) -> tuple[list[str], object]:
    """Architectures an agent (seed 0) evaluates learning in ``chunks``; with ``tmp_path``, each
    chunk after the first runs in a fresh agent (another seed) loaded from the previous one's save."""
    log = SearchLog(None)
    env: gym.Env = RecordEpisodes(make_synthetic_env(), log)
    cls = resolve_agent(agent_name)
    agent = cls(env, seed=0)
    for i, n in enumerate(chunks):
        if tmp_path is not None and i:
            agent.save(tmp_path / f"{agent_name}-{i}")
            agent = cls(env, seed=1000 + i)
            agent.load(tmp_path / f"{agent_name}-{i}")
        if hasattr(agent, "total_episodes"):
            agent.total_episodes = sum(chunks)
        agent.learn(n)
    return [r.arch for r in log.records], agent


@pytest.mark.parametrize("name", CHUNKABLE)
def test_chunked_learn_equals_one_learn(name):
    whole, one = recorded(name, [30])
    chunked, many = recorded(name, [10, 10, 7, 3])
    assert len(whole) == 30 and chunked == whole
    if name == "qlearning":
        assert many.q == one.q and many.epsilon == one.epsilon


@pytest.mark.parametrize("name", CHUNKABLE)
def test_checkpoint_between_chunks_equals_one_learn(name, tmp_path):
    whole, _ = recorded(name, [24])
    assert recorded(name, [10, 10, 4], tmp_path)[0] == whole


def test_qlearning_budget_fixes_the_schedule():
    """Without the total, each learn call is scaled as a whole MetaQNN schedule of its own, so a
    first chunk of 10 would already descend to epsilon 0.1 instead of still exploring."""
    from nas_gym.agents.q_learning import QLearning, scaled_schedule

    budget, unset = (QLearning(RecordEpisodes(make_synthetic_env(), SearchLog(None)), seed=0,
                               hparams={"count_unique": False}) for _ in range(2))
    budget.total_episodes = 20
    budget.learn(10)
    unset.learn(10)
    assert budget.schedule() == scaled_schedule(20) and budget.epsilon == 1.0  # half-way: still exploring
    assert unset.schedule() == scaled_schedule(10) and unset.epsilon == 0.1


# -- run_search: an interrupted search, resumed in process --------------------------------------
def interrupted_then_resumed(tmp_path: Path, agent: str, episodes: int, stop_at: int, every: int) -> Path:
    cfg = load_config("mnist1d-tiny", {"evaluator.kind": "synthetic"})

    def stop(log: SearchLog) -> None:
        if log.episodes == stop_at:
            raise KeyboardInterrupt

    with pytest.raises(SearchInterrupted) as stopped:
        run_search(cfg, agent, episodes, 0, tmp_path / "runs", on_episode=stop, checkpoint_every=every, argv=["a"])
    run_dir = stopped.value.run_dir
    assert stopped.value.episodes_done == (stop_at - 1) // every * every
    last = int(rows_of(run_dir)[-1]["episode"])  # rows past the checkpoint were written (invalid episodes have none)
    assert stopped.value.episodes_done < last <= stop_at
    summary = run_search(cfg, agent, episodes, 0, tmp_path / "unused", checkpoint_every=every, resume=run_dir,
                         argv=["b"])
    assert summary.resumed_from == stopped.value.episodes_done and summary.episodes == episodes
    assert not (tmp_path / "unused").exists()
    return run_dir


def test_resumed_search_records_like_an_uninterrupted_one(tmp_path):
    """Q-learning, which also records its own curve (epsilon); evolution is resumed for real below."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = load_config("mnist1d-tiny", {"evaluator.kind": "synthetic"})
    whole = run_search(cfg, "qlearning", 23, 0, tmp_path / "whole", checkpoint_every=5).run_dir
    run_dir = interrupted_then_resumed(tmp_path, "qlearning", 23, stop_at=13, every=5)

    resumed, straight = rows_of(run_dir), rows_of(whole)
    assert [r["episode"] for r in resumed] == [str(i) for i in range(1, 24)]
    keep = ("episode", "arch", "val_acc", "reward", "evaluations")
    assert [{k: r[k] for k in keep} for r in resumed] == [{k: r[k] for k in keep} for r in straight]
    assert read_manifest(run_dir).episodes_done == 23
    assert [p.name for p in (run_dir / "checkpoint").iterdir()] == ["ep-000023"]  # older ones removed
    assert (run_dir / "command.txt").read_text() == "a\nb\n"

    events = EventAccumulator(str(run_dir))
    events.Reload()
    steps = [e.step for e in events.Scalars("nas/val_acc")]
    assert steps == list(range(1, 24))  # the killed run's steps 11-13 are purged, not doubled
    assert len(events.Scalars("nas/epsilon")) == 23


def test_checkpoints_leave_an_sb3_run_unchanged_and_it_resumes(tmp_path):
    """SB3 agents save from inside one learn call: chunks would drop DQN's stopping transition."""
    cfg = load_config("mnist1d-tiny", {"evaluator.kind": "synthetic"})
    often = run_search(cfg, "dqn", 18, 0, tmp_path / "often", checkpoint_every=5).run_dir
    never = run_search(cfg, "dqn", 18, 0, tmp_path / "never", checkpoint_every=1000).run_dir
    assert rows_of(often) == rows_of(never)

    run_dir = interrupted_then_resumed(tmp_path, "dqn", 18, stop_at=13, every=5)
    episodes = [int(r["episode"]) for r in rows_of(run_dir)]
    assert episodes == sorted(set(episodes)) and episodes[-1] <= 18  # each once (invalid episodes have no row)
    saved = {p.name for p in (run_dir / read_manifest(run_dir).checkpoint).iterdir()}
    assert saved == {"agent.zip", "agent.replay.npz", "agent.rng.json", "search.json"}  # no pickle


def test_search_killed_before_first_checkpoint_restarts_from_zero(tmp_path):
    run_dir = interrupted_then_resumed(tmp_path, "random", 8, stop_at=3, every=5)
    assert [r["episode"] for r in rows_of(run_dir)] == [str(i) for i in range(1, 9)]


# -- the command: refusals and a finished run ------------------------------------------------------
def cli_search(logdir: Path, *extra: str):
    return runner.invoke(app, ["search", "--agent", "qlearning", "--config", "mnist1d-tiny", "--episodes", "12",
                               "--seed", "0", "--logdir", str(logdir), "--evaluator", "synthetic",
                               "--checkpoint-every", "5", *extra])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One finished run shared by the tests below, none of which may change it."""
    logdir = tmp_path_factory.mktemp("finished")
    result = cli_search(logdir)
    assert result.exit_code == 0, result.output
    (run_dir,) = logdir.iterdir()
    return run_dir


def test_resuming_a_finished_run_is_a_no_op(finished_run):
    before = {p.name: p.stat().st_mtime_ns for p in finished_run.rglob("*")}
    # where it runs may change (another machine, device, backend); what it computes may not
    result = cli_search(finished_run.parent, "--resume", str(finished_run), "--set", "runtime.threads=1",
                        "--set", "data.root=/elsewhere")
    assert result.exit_code == 0, result.output
    assert "already finished its 12 episodes; nothing to resume" in result.output
    assert "Top" in result.output
    assert {p.name: p.stat().st_mtime_ns for p in finished_run.rglob("*")} == before
    assert len(list(finished_run.parent.iterdir())) == 1


@pytest.mark.parametrize("change,needle", [
    (["--agent", "random"], "the run used --agent qlearning, this command has --agent random"),
    (["--seed", "1"], "the run used --seed 0"),
    (["--episodes", "5"], "the run used --episodes 12, this command has --episodes 5; give at least 12"),
    (["--set", "train.epochs=3"], "config differs from the run's at train.epochs (run: 2, now: 3)"),
    (["--hparams", "{replay: 4}"], "the run used --hparams {}"),
], ids=["agent", "seed", "episodes", "config", "hparams"])
def test_resume_with_other_arguments_exits_2(tmp_path, finished_run, change, needle):
    args = ["search", "--agent", "qlearning", "--config", "mnist1d-tiny", "--episodes", "12", "--seed", "0",
            "--evaluator", "synthetic"]
    for i in range(0, len(change), 2):
        if change[i] in args and change[i] != "--set":
            args[args.index(change[i]) + 1] = change[i + 1]
        else:
            args += change[i : i + 2]
    result = runner.invoke(app, [*args, "--logdir", str(tmp_path), "--resume", str(finished_run)])
    assert result.exit_code == 2, result.output
    assert needle in " ".join(result.output.split()) and "command.txt" in result.output
    assert result.output.startswith("error:")  # no progress bar drawn before the refusal
    assert "Traceback" not in result.output and not list(tmp_path.iterdir())


@pytest.mark.parametrize("folder", ["plain", "missing", "garbled"])
def test_resume_of_a_folder_that_is_not_a_run_exits_2(tmp_path, folder):
    target = tmp_path / folder
    if folder != "missing":
        target.mkdir()
    if folder == "garbled":
        (target / MANIFEST).write_text("{not json")
    result = cli_search(tmp_path / "runs", "--resume", str(target))
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert {"plain": "not a resumable run folder", "missing": "no such folder", "garbled": "unreadable"}[folder] in text
    assert "Traceback" not in result.output and not (tmp_path / "runs").exists()


# -- the acceptance test: SIGKILL during real training, then --resume --------------------------
@pytest.fixture(scope="module")
def mnist1d_ready() -> None:
    """Generate MNIST-1D once (about 10 s, then cached in the default data folder), so the
    search subprocess spends its time searching."""
    from nas_gym.data import load_dataset

    load_dataset(load_config("mnist1d-tiny").data)


def cache_entries(path: Path) -> dict[str, tuple[str, float]]:
    from nas_gym.storage.cache import ResultCache

    with ResultCache(path) as cache:
        return {e.arch: (json.dumps(e.result.to_dict()), e.created) for e in cache.all()}


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals")
def test_search_killed_with_sigkill_resumes_without_losing_or_retraining(tmp_path, mnist1d_ready):
    cache = tmp_path / "cache.sqlite"
    args = ["search", "--agent", "evolution", "--config", "mnist1d-tiny", "--episodes", "80", "--seed", "0",
            "--evaluator", "train", "--checkpoint-every", "6",
            # one epoch on 5% of the training set: a fraction of a second per architecture
            "--set", "train.epochs=1", "--set", "data.train_fraction=0.05", "--set", "runtime.device=cpu",
            "--set", "runtime.threads=1", "--set", f"evaluator.cache={cache}"]
    proc = subprocess.Popen([sys.executable, "-m", "nas_gym.cli", *args, "--logdir", str(tmp_path / "runs")],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120  # only to fail instead of hanging; nothing asserts speed
    try:
        while True:
            assert proc.poll() is None, "the search finished before it could be killed; give it more episodes"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            runs = list((tmp_path / "runs").glob("*/" + MANIFEST))
            if runs and read_manifest(runs[0].parent).episodes_done >= 6:
                proc.send_signal(signal.SIGSTOP)  # freeze it, so what is read below is what the kill leaves
                run_dir, done = runs[0].parent, read_manifest(runs[0].parent).episodes_done
                # trainings past the checkpoint (in the cache; the CSV is written at checkpoints): the case under test
                if len(cache_entries(cache)) > len({r["arch"] for r in rows_of(run_dir)[:done]}):
                    break
                proc.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = cache_entries(cache)
    assert len(before) > len({r["arch"] for r in rows_of(run_dir)[:done]})  # trainings after the checkpoint

    resumed = runner.invoke(app, [*args, "--resume", str(run_dir)])
    assert resumed.exit_code == 0, resumed.output
    text = " ".join(resumed.output.split())
    assert f"Resumed after episode {done}." in text and "80 episodes, 80 evaluations" in text

    rows = rows_of(run_dir)
    assert [int(r["episode"]) for r in rows] == list(range(1, 81))  # every episode once
    assert read_manifest(run_dir).episodes_done == 80 and rows[-1]["evaluations"] == "80"
    after = cache_entries(cache)
    assert all(after[arch] == entry for arch, entry in before.items())  # nothing lost, nothing overwritten
    assert set(after) == {r["arch"] for r in rows}  # every distinct architecture trained exactly once
    seen = {r["arch"] for r in rows[:done]}
    for r in rows[done:]:  # played again or new: a hit exactly when trained before (by either process)
        assert r["cached"] == str(int(r["arch"] in before or r["arch"] in seen)), r
        seen.add(r["arch"])

    # the same search never interrupted proposes the same architectures (all from the cache now)
    straight = runner.invoke(app, [*args, "--logdir", str(tmp_path / "again")])
    assert straight.exit_code == 0, straight.output
    (again,) = (tmp_path / "again").iterdir()
    assert [r["arch"] for r in rows_of(again)] == [r["arch"] for r in rows]
    assert {r["cached"] for r in rows_of(again)} == {"1"}


def test_a_run_folder_in_use_is_refused(tmp_path):
    """Two resumes of one folder at once would interleave checkpoints: the second is refused
    (the lock is the OS's, so a killed search never leaves it held)."""
    import fcntl

    logdir = tmp_path / "runs"
    interrupted = cli_search(logdir, "--episodes", "12")
    assert interrupted.exit_code == 0, interrupted.output
    (run_dir,) = logdir.iterdir()
    with (run_dir / ".lock").open("a") as other_process:
        fcntl.flock(other_process, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = cli_search(logdir, "--resume", str(run_dir))
        fcntl.flock(other_process, fcntl.LOCK_UN)
    assert result.exit_code == 2, result.output
    assert "is in use by another nas-gym search" in result.output
    assert cli_search(logdir, "--resume", str(run_dir)).exit_code == 0  # free again
