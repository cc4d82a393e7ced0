"""Simulated workers: the clock's hand-computed schedules, a driver that never tells a result
before it arrives, K = 1 as the agents' own loop, determinism, refusals, and the search end to end."""

from __future__ import annotations

import csv
from pathlib import Path

import gymnasium as gym
import pytest
from typer.testing import CliRunner

from nas_gym.agents.base import BaseAgent, resolve_agent
from nas_gym.cli import app
from nas_gym.config import ConfigError, load_config
from nas_gym.envs.nas_env import NasEnv
from nas_gym.runs.runlog import read_records
from nas_gym.runs.search import SearchInterrupted, run_search
from nas_gym.runs.workers import SimulatedClock, SimulatedWorkers, WorkerClock, arrival_order, by_arrival, schedule

ASK_TELL = ("random", "evolution", "local")
runner = CliRunner()


# -- the clock -------------------------------------------------------------------------------
def test_asynchronous_schedule_by_hand():
    # K=2. job0 w0 0-3; job1 w1 0-1; job2 on w1 (free at 1) 1-5; job3 on w0 (free at 3) 3-4;
    # job4 on w0 (4) 4-9; job5 on w1 (5) 5-14; job6 on w0 (9) 9-11.
    jobs = schedule([3, 1, 4, 1, 5, 9, 2], workers=2)
    assert [(j.worker, j.start, j.finish) for j in jobs] == [
        (0, 0, 3), (1, 0, 1), (1, 1, 5), (0, 3, 4), (0, 4, 9), (1, 5, 14), (0, 9, 11)]
    assert [j.index for j in arrival_order(jobs)] == [1, 0, 3, 2, 4, 6, 5]


def test_asynchronous_ties_go_to_the_lowest_worker_and_the_earlier_job():
    # both workers free at 2: job2 takes worker 0, job3 worker 1; both finish at 3
    jobs = schedule([2, 2, 1, 1], workers=2)
    assert [(j.worker, j.start, j.finish) for j in jobs] == [(0, 0, 2), (1, 0, 2), (0, 2, 3), (1, 2, 3)]
    assert [j.index for j in arrival_order(jobs)] == [0, 1, 2, 3]


def test_synchronous_batches_wait_for_their_slowest():
    # K=2: batch (3, 1) starts at 0 and ends at 3; batch (4, 1) starts at 3, ends at 7; (5) starts at 7
    jobs = schedule([3, 1, 4, 1, 5], workers=2, synchronous=True)
    assert [(j.worker, j.start, j.finish) for j in jobs] == [(0, 0, 3), (1, 0, 1), (0, 3, 7), (1, 3, 4), (0, 7, 12)]
    clock = WorkerClock(2, synchronous=True)
    for d in (3, 1, 4, 1, 5):
        clock.place(d)
    assert clock.makespan == 12


def test_one_worker_is_the_running_sum_and_a_repeat_waits_for_the_first_result():
    durations = [0.5, 2.0, 0.25]
    assert [j.finish for j in schedule(durations, workers=1)] == [0.5, 2.5, 2.75]
    clock = WorkerClock(3)
    first = clock.place(10.0)
    repeat = clock.place(0.0, ready=first.finish)  # a cache hit of an architecture still training
    assert repeat.start == 0 and repeat.finish == 10.0


# -- the driver ------------------------------------------------------------------------------
def table_env(preset: str = "mnist1d-tiny", seed: int = 0, workers: int = 1) -> tuple[gym.Env, list[dict]]:
    """A table env on a clock of ``workers``, and the list every finished episode's info goes to."""
    infos: list[dict] = []

    class Infos(gym.Wrapper):
        def step(self, action):
            out = self.env.step(action)
            if out[2] or out[3]:
                infos.append(out[4])
            return out

    env = NasEnv(preset, evaluator="table", seed=seed, overrides={"evaluator.cache": None})
    return Infos(SimulatedClock(env, workers)), infos


class Spy(BaseAgent):
    """An ask/tell agent around a real one, noting what it had been told at each ask."""

    def __init__(self, inner, synchronous: bool = False) -> None:
        self.inner, self.synchronous = inner, synchronous
        self.told: list[tuple[str, float]] = []  # (arch, sim_start) of each result told, in order
        self.told_at_ask: list[int] = []

    def ask(self):
        self.told_at_ask.append(len(self.told))
        return self.inner.ask()

    def tell(self, arch, reward, info):
        self.told.append((info["arch"], info["sim_start"]))
        self.inner.tell(arch, reward, info)


@pytest.mark.parametrize("name", ASK_TELL)
def test_asynchronous_driver_tells_exactly_what_has_arrived_at_each_ask(name):
    env, infos = table_env(workers=4)
    spy = Spy(resolve_agent(name)(env, seed=3))
    SimulatedWorkers(spy, env).drive(60)
    assert len(infos) == 60
    jobs = [(i["arch"], i["sim_start"]) for i in infos]
    for i, info in enumerate(infos):
        told = set(spy.told[:spy.told_at_ask[i]])
        arrived = {jobs[j] for j in range(i) if infos[j]["sim_finish"] <= info["sim_start"]}
        assert told == arrived, f"ask {i} at {info['sim_start']}: told {len(told)}, arrived {len(arrived)}"
    assert len({i["sim_worker"] for i in infos}) == 4
    # the told order is the order of arrival
    finish = {(i["arch"], i["sim_start"]): i["sim_finish"] for i in infos}
    assert [finish[t] for t in spy.told] == sorted(finish[t] for t in spy.told)


def test_synchronous_driver_tells_whole_batches_only():
    env, infos = table_env(workers=3)
    spy = Spy(resolve_agent("random")(env, seed=0), synchronous=True)
    SimulatedWorkers(spy, env).drive(20)
    assert spy.told_at_ask == [3 * (i // 3) for i in range(20)]
    starts = [i["sim_start"] for i in infos]
    for b in range(1, 6):  # each batch starts when the slowest of the one before has finished
        assert starts[3 * b] == max(i["sim_finish"] for i in infos[3 * b - 3: 3 * b]) == starts[3 * b + 2]


@pytest.mark.parametrize("preset", ["mnist1d-tiny", "mnist1d-cell"])
@pytest.mark.parametrize("name", ASK_TELL)
def test_one_worker_drive_is_the_agents_own_learn(name, preset):
    own_env, own = table_env(preset, seed=1)
    resolve_agent(name)(own_env, seed=1).learn(50)
    driven_env, driven = table_env(preset, seed=1)
    driver = SimulatedWorkers(resolve_agent(name)(driven_env, seed=1), driven_env)
    driver.drive(20)
    driver.drive(30)
    assert driven == own and len(own) == 50
    assert driver.simulated_seconds == pytest.approx(sum(i["sim_finish"] - i["sim_start"] for i in own))


@pytest.mark.parametrize("name", ASK_TELL)
def test_same_seed_same_trajectory_with_four_workers(name):
    runs = []
    for _ in range(2):
        env, infos = table_env("mnist1d-cell", seed=7, workers=4)
        SimulatedWorkers(resolve_agent(name)(env, seed=7), env).drive(40)
        runs.append([(i["arch"], i["sim_start"], i["sim_finish"]) for i in infos])
    assert runs[0] == runs[1] and len(runs[0]) == 40


@pytest.mark.parametrize("name", ["sh", "asha", "hyperband", "bohb", "smac_hb"])
def test_multi_fidelity_agents_keep_four_workers_busy_at_several_fidelities(name):
    """On the shipped curve table: each job's epochs come from the agent's ask (reset_options),
    four jobs start at once, and the same seed gives the same schedule."""
    runs = []
    for _ in range(2):
        env, infos = table_env("mf-chain", seed=5, workers=4)
        SimulatedWorkers(resolve_agent(name)(env, seed=5), env).drive(40)
        runs.append([(i["arch"], i["epochs"], i["sim_start"], i["sim_finish"]) for i in infos])
    assert runs[0] == runs[1] and len(runs[0]) == 40
    assert len({epochs for _, epochs, _, _ in runs[0]}) > 1, "several fidelities"
    assert sum(start == 0 for _, _, start, _ in runs[0]) == 4 and len({i["sim_worker"] for i in infos}) == 4


def test_local_search_with_four_workers_never_repeats():
    env, infos = table_env("mnist1d-cell", seed=2, workers=4)
    agent = resolve_agent("local")(env, seed=2)
    SimulatedWorkers(agent, env).drive(80)
    assert len({i["arch"] for i in infos}) == 80 and agent.restarts >= 1


# -- refusals --------------------------------------------------------------------------------
def test_config_refuses_simulated_workers_without_recorded_seconds():
    with pytest.raises(ConfigError, match=r"simulated_workers=4 .*table or surrogate.*evaluator.simulated_workers=1"):
        load_config("mnist1d-tiny", {"evaluator.kind": "train", "evaluator.simulated_workers": 4})
    with pytest.raises(ConfigError, match="evaluator.simulated_workers"):
        load_config("mnist1d-tiny", {"evaluator.kind": "table", "evaluator.simulated_workers": 0})
    with pytest.raises(ConfigError, match="set evaluator.workers=1"):
        load_config("mnist1d-tiny", {"evaluator.kind": "table", "evaluator.simulated_workers": 2, "evaluator.workers": 2})


@pytest.mark.parametrize("args,needle", [
    (["--agent", "ppo", "--evaluator", "table"], "agent 'ppo' has no ask/tell"),
    (["--agent", "qlearning", "--evaluator", "table"], "RL agents learn from each episode in turn"),
    (["--agent", "random", "--evaluator", "train"], "needs kind table or surrogate, not 'train'"),
    (["--agent", "random", "--evaluator", "synthetic"], "needs kind table or surrogate"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else None)
def test_search_refuses_in_one_line_and_writes_nothing(tmp_path, args, needle):
    result = runner.invoke(app, ["search", "--config", "mnist1d-tiny", "--episodes", "4", "--logdir",
                                 str(tmp_path / "runs"), "--set", "evaluator.simulated_workers=4", *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# -- end to end ------------------------------------------------------------------------------
def rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "evaluations.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def cli_run(tmp_path: Path, k: int, episodes: int = 60) -> list[dict[str, str]]:
    logdir = tmp_path / f"k{k}"
    result = runner.invoke(app, ["search", "--agent", "random", "--config", "mnist1d-tiny", "--evaluator", "table",
                                 "--episodes", str(episodes), "--seed", "4", "--logdir", str(logdir),
                                 "--set", f"evaluator.simulated_workers={k}", "--set", "evaluator.cache=null"])
    assert result.exit_code == 0, result.output
    (run_dir,) = logdir.iterdir()
    return rows(run_dir)


def test_random_search_on_four_workers_takes_about_a_quarter_of_the_time(tmp_path):
    one, four = cli_run(tmp_path, 1), cli_run(tmp_path, 4)
    assert [r["arch"] for r in one] == [r["arch"] for r in four]  # draws do not depend on results
    durations = [float(r["sim_finish"]) - float(r["sim_start"]) for r in one]
    assert float(one[-1]["sim_finish"]) == pytest.approx(sum(durations), rel=1e-6)
    # the run's times are the clock model's for these durations, and its end is about a quarter of one worker's
    model = schedule(durations, workers=4)
    assert [float(r["sim_finish"]) for r in four] == pytest.approx([j.finish for j in model], rel=1e-6)
    end = max(float(r["sim_finish"]) for r in four)
    assert sum(durations) / 4 <= end <= sum(durations) / 4 + max(durations)
    (run_dir,) = (tmp_path / "k4").iterdir()
    arrived = by_arrival(read_records(run_dir))
    assert [r.sim_finish for r in arrived] == sorted(float(r["sim_finish"]) for r in four)
    assert [r.episode for r in arrived] != sorted(r.episode for r in arrived)  # a long job asked early arrives late


def test_resumed_four_worker_search_continues_exactly(tmp_path):
    config = load_config("mnist1d-tiny", {"evaluator.kind": "table", "evaluator.simulated_workers": 4})
    whole = run_search(config, "evolution", 40, 5, tmp_path / "whole", checkpoint_every=10)

    def stop_at_25(log):
        if log.episodes == 25:
            raise KeyboardInterrupt

    with pytest.raises(SearchInterrupted) as stopped:
        run_search(config, "evolution", 40, 5, tmp_path / "split", checkpoint_every=10, on_episode=stop_at_25)
    resumed = run_search(config, "evolution", 40, 5, tmp_path / "unused", resume=stopped.value.run_dir)
    keep = ("arch", "sim_start", "sim_finish")
    assert [[r[c] for c in keep] for r in rows(resumed.run_dir)] == [[r[c] for c in keep] for r in rows(whole.run_dir)]
    assert resumed.simulated_seconds == whole.simulated_seconds


def test_an_agents_reset_options_start_each_episode_it_asked_for():
    seen: list[dict | None] = []

    class Options(gym.Wrapper):
        def reset(self, **kwargs):
            seen.append(kwargs.get("options"))
            return self.env.reset(seed=kwargs.get("seed"))  # the options are this test's, not the env's

    env, infos = table_env(workers=2)
    env = Options(env)
    agent = resolve_agent("random")(env, seed=0)
    agent.reset_options = lambda arch: {"note": arch.text()}
    SimulatedWorkers(agent, env).drive(6)
    assert seen == [{"note": i["arch"]} for i in infos] and len(seen) == 6
