"""TensorBoard output of a search, read back from the event files."""

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from typer.testing import CliRunner

from nas_gym.agents.epsilon_figure import TAG
from nas_gym.agents.random_search import RandomSearch
from nas_gym.cli import app
from nas_gym.config import load_config
from nas_gym.runs.recorder import RecordEpisodes, SearchLog
from nas_gym.runs.search import SearchInterrupted, run_search
from tests.conftest import make_synthetic_env

EPISODES = 120


def events(run_dir) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance={"images": 0, "histograms": 0, "scalars": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def qlearning_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("tb")
    result = CliRunner().invoke(app, ["search", "--agent", "qlearning", "--config", "mnist1d-tiny", "--evaluator",
                                      "synthetic", "--episodes", str(EPISODES), "--logdir", str(logdir),
                                      "--hparams", "{count_unique: false}"])
    assert result.exit_code == 0, result.output
    (run_dir,) = logdir.iterdir()
    return events(run_dir)


def test_figures_are_written_at_the_end(qlearning_run):
    images = qlearning_run.Tags()["images"]
    assert {"nas/pareto_front", "nas/best_architecture"} <= set(images)
    png = qlearning_run.Images("nas/best_architecture")[-1].encoded_image_string
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert qlearning_run.Images("nas/pareto_front")[-1].step == EPISODES


def test_every_episode_is_one_step(qlearning_run):
    """Buffered scalars still land one per episode, in order, with the episode as the step."""
    for tag in ("nas/epsilon", "nas/evaluations"):
        assert [e.step for e in qlearning_run.Scalars(tag)] == list(range(1, EPISODES + 1))
    assert [e.value for e in qlearning_run.Scalars("nas/evaluations")] == list(range(1, EPISODES + 1))


def test_reward_histograms_per_stage(qlearning_run):
    hist = qlearning_run.Histograms("nas/reward_by_stage")
    assert [h.step for h in hist] == [25, 50, 75, 100, 120]  # the episode that closed each stage
    assert sum(h.histogram_value.num for h in hist) == EPISODES


def test_metaqnn_accuracy_per_epsilon(qlearning_run):
    """Q-learning writes MetaQNN's figure itself, once, with x = 100 * (1 - epsilon)."""
    points = qlearning_run.Scalars(TAG)
    assert [p.step for p in points] == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert all(0.0 < p.value < 1.0 for p in points)


def test_hparams_in_the_run_folder(qlearning_run):
    content = qlearning_run.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in content
    from tensorboard.plugins.hparams import plugin_data_pb2

    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["agent"].string_value == "qlearning" and start.hparams["seed"].number_value == 0
    assert qlearning_run.Scalars("hparam/best_val_acc")[-1].value > 0.5


@pytest.mark.parametrize("figure_seconds,figures", [(0.0, 4), (3600.0, 1)], ids=["due-each-flush", "end-only"])
def test_pareto_figure_at_checkpoints_when_due(tmp_path, figure_seconds, figures):
    """A flush (what a checkpoint calls) redraws the figure only when ``figure_seconds`` have
    passed; the end always draws it. Nothing reaches the event file before a flush."""
    log = SearchLog(tmp_path, hparams={}, figure_seconds=figure_seconds)
    agent = RandomSearch(RecordEpisodes(make_synthetic_env(), log), seed=0)
    agent.learn(4)
    assert "nas/val_acc" not in events(tmp_path).Tags()["scalars"]
    for _ in range(3):
        log.flush()
        agent.learn(4)
    log.close()
    acc = events(tmp_path)
    assert len(acc.Images("nas/pareto_front")) == figures
    assert [e.step for e in acc.Scalars("nas/val_acc")] == list(range(1, 17))


def test_epsilon_figure_survives_a_resume(tmp_path):
    """The tallies travel in Q-learning's checkpoint: a run stopped mid-schedule and resumed
    draws the same MetaQNN figure as one that never stopped."""
    cfg = load_config("mnist1d-tiny", {"evaluator.kind": "synthetic"})
    by_episode = {"count_unique": False}  # every stage reached in 30 episodes
    whole = run_search(cfg, "qlearning", 30, 0, tmp_path / "whole", checkpoint_every=5, argv=["a"],
                       hparams=by_episode).run_dir

    def stop(log: SearchLog) -> None:
        if log.episodes == 18:
            raise KeyboardInterrupt

    with pytest.raises(SearchInterrupted) as stopped:
        run_search(cfg, "qlearning", 30, 0, tmp_path / "runs", on_episode=stop, checkpoint_every=5, argv=["a"],
                   hparams=by_episode)
    run_search(cfg, "qlearning", 30, 0, tmp_path / "unused", checkpoint_every=5, resume=stopped.value.run_dir,
               argv=["b"], hparams=by_episode)

    def points(run_dir) -> list[tuple[int, float]]:
        return [(p.step, p.value) for p in events(run_dir).Scalars(TAG)]

    assert len(points(whole)) == 10 and points(stopped.value.run_dir) == points(whole)
