"""TensorBoard output of a search, read back from the event files."""

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from typer.testing import CliRunner

from nas_gym.cli import app


@pytest.fixture(scope="module")
def qlearning_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("tb")
    result = CliRunner().invoke(app, ["search", "--agent", "qlearning", "--config", "mnist1d-tiny", "--evaluator",
                                      "synthetic", "--episodes", "120", "--logdir", str(logdir)])
    assert result.exit_code == 0, result.output
    (run_dir,) = logdir.iterdir()
    acc = EventAccumulator(str(run_dir), size_guidance={"images": 0, "histograms": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_figures_are_written(qlearning_run):
    images = qlearning_run.Tags()["images"]
    assert {"nas/pareto_front", "nas/best_architecture"} <= set(images)
    png = qlearning_run.Images("nas/best_architecture")[-1].encoded_image_string
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(qlearning_run.Images("nas/pareto_front")) >= 2, "updated as the search goes, and at the end"


def test_reward_histograms_per_stage(qlearning_run):
    hist = qlearning_run.Histograms("nas/reward_by_stage")
    assert len(hist) >= 2 and all(h.histogram_value.num > 0 for h in hist)
    assert sum(h.histogram_value.num for h in hist) == 120


def test_metaqnn_accuracy_per_epsilon(qlearning_run):
    points = qlearning_run.Scalars("nas/mean_val_acc_by_epsilon")
    assert [p.step for p in points] == sorted(p.step for p in points) and points[0].step == 0
    assert len(points) >= 5


def test_hparams_in_the_run_folder(qlearning_run):
    content = qlearning_run.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in content
    from tensorboard.plugins.hparams import plugin_data_pb2

    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["agent"].string_value == "qlearning" and start.hparams["seed"].number_value == 0
    assert qlearning_run.Scalars("hparam/best_val_acc")[-1].value > 0.5
