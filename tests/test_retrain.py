"""nas-gym retrain: train+validation at full budget, test accuracy over seeds, saved and exported models."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

import nas_gym
from nas_gym.cli import app
from nas_gym.config import load_config
from nas_gym.data import Dataset, load_dataset, merge_train_val
from nas_gym.runs.checkpoint import Manifest, write_manifest
from nas_gym.runs.retrain import ModelFileError, RetrainReport, default_epochs, retrain
from nas_gym.runs.runlog import CSV_FIELDS
from nas_gym.spaces.layer_chain.chain import Chain

runner = CliRunner()
ARCH = "conv3-16|maxpool|conv3-32"
BEST = "conv5-16|conv3-32s2"


@pytest.fixture(scope="module")
def retrained(tmp_path_factory) -> RetrainReport:
    """One short retraining through the Python API, shared by the tests that inspect its outputs."""
    out = tmp_path_factory.mktemp("retrain")
    return retrain(load_config("mnist1d-tiny"), Chain.parse(ARCH), out_dir=out, epochs=1, seeds=1,
                   export="torchscript")


def _batch() -> torch.Tensor:
    return load_dataset(load_config("mnist1d-tiny").data).x_test[:64]


def test_saved_model_reloads_with_identical_predictions(retrained):
    (seed,) = retrained.seeds
    assert seed.ok and seed.model_path.is_file()
    loaded = nas_gym.load_model(seed.model_path)
    assert not loaded.training
    x = _batch()
    with torch.no_grad():
        assert torch.equal(loaded(x), seed.model(x))


def test_torchscript_export_gives_the_same_outputs(retrained):
    (seed,) = retrained.seeds
    assert seed.export_path.name == "model-seed0.torchscript.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated upstream, not gone
        scripted = torch.jit.load(str(seed.export_path))
    x = _batch()
    with torch.no_grad():
        assert torch.equal(scripted(x), seed.model(x))


def test_test_accuracy_is_computed_on_the_test_split(retrained):
    """An independent count on the test tensors matches the report; training used train+val."""
    data = load_dataset(load_config("mnist1d-tiny").data)
    model = nas_gym.load_model(retrained.seeds[0].model_path)
    with torch.no_grad():
        expected = (model(data.x_test).argmax(1) == data.y_test).sum().item() / len(data.y_test)
    assert retrained.seeds[0].test_acc == expected
    assert retrained.test_size == len(data.y_test)
    assert retrained.train_size == len(data.y_train) + len(data.y_val)
    report = json.loads((retrained.out_dir / "retrain.json").read_text())
    assert report["test_acc_mean"] == retrained.seeds[0].test_acc and report["test_acc_std"] is None
    assert report["arch"] == ARCH and report["epochs"] == 1 and report["data"] == "train+validation"


def test_merge_train_val_keeps_test_untouched():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 1, 8, generator=g), torch.arange(20)
    data = Dataset("fake", x[:10], y[:10], x[10:14], y[10:14], x[14:], y[14:], 3)
    merged = merge_train_val(data)
    assert torch.equal(merged.x_train, x[:14]) and torch.equal(merged.y_train, y[:14])
    assert len(merged.y_val) == 0 and merged.x_val.shape[1:] == x.shape[1:]
    assert merged.x_test is data.x_test and merged.y_test is data.y_test


def test_default_epochs_is_a_full_budget():
    assert default_epochs(load_config("mnist1d-tiny")) == 20  # 4 x 2 is below the 20-epoch floor
    assert default_epochs(load_config("digits")) == 60


def _fake_run(folder: Path) -> Path:
    """A run folder as nas-gym search leaves it: evaluations.csv (the run record's columns) and config.yaml."""
    folder.mkdir()
    rows = [(1, ARCH, 0.61, "ok", ""), (2, BEST, 0.74, "ok", ""), (3, "conv3-32|conv3-32", 0.0, "failed", "nan_loss"),
            (4, ARCH, 0.66, "ok", "")]
    with (folder / "evaluations.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for episode, arch, acc, status, reason in rows:
            writer.writerow([episode, arch, f"{acc:.6f}", f"{acc:.6f}", 1000, 20000, status, reason, episode, 0, "", 1.0, ""])
    (folder / "config.yaml").write_text(yaml.safe_dump(load_config("mnist1d-tiny").model_dump(mode="json")))
    write_manifest(folder, Manifest("random", "mnist1d-tiny", 0, 4, 4, None, "x"))  # signs config.yaml
    return folder


def test_retrain_from_a_run_folder_takes_its_best_architecture(tmp_path):
    run_dir = _fake_run(tmp_path / "run")
    result = runner.invoke(app, ["retrain", str(run_dir), "--epochs", "1", "--seeds", "1", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "retrain.json").read_text())
    assert report["arch"] == BEST and report["source"] == str(run_dir)
    assert report["preset"] == "mnist1d-tiny"  # from the run's config.yaml, no --config given
    assert "Test accuracy" in result.output and (tmp_path / "out" / "model-seed0.pt").is_file()


def test_load_model_rejects_a_foreign_file(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not a nas-gym model file"):
        nas_gym.load_model(tmp_path / "other.pt")


def _onnx_missing() -> bool:
    import importlib.util

    return any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript"))


BAD = [
    (["conv3-16|maxpol"], "cannot parse op 'maxpol'"),
    (["{empty}"], "no evaluations.csv"),
    (["no/such/run"], "no such run folder"),
    ([ARCH, "--seeds", "0"], "--seeds >= 1"),
    ([ARCH, "--epochs", "0"], "--epochs >= 1"),
    ([ARCH, "--export", "tflite"], "is not one of torchscript, onnx"),
    (["|".join(["maxpool"] * 6)], "below 1"),
]
if _onnx_missing():
    BAD.append(([ARCH, "--export", "onnx"], "pip install onnx"))


@pytest.mark.parametrize("args,needle", BAD, ids=[" ".join(a)[:40] for a, _ in BAD])
def test_bad_input_exits_2_with_one_line(tmp_path, args, needle):
    (tmp_path / "empty").mkdir()
    args = [str(tmp_path / "empty") if a == "{empty}" else a for a in args]
    result = runner.invoke(app, ["retrain", *args, "--config", "mnist1d-tiny", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out" / "retrain.json").exists()


@pytest.mark.skipif(_onnx_missing(), reason="needs the export extra: pip install 'nas-gym[export]' (in dev)")
def test_onnx_export_gives_the_same_outputs(retrained, tmp_path):
    """The ONNX file runs in onnx's own reference interpreter (no torch) and agrees with torch,
    also for a batch size other than the one used to trace it."""
    from onnx.reference import ReferenceEvaluator

    from nas_gym.runs.retrain import export_model

    (seed,) = retrained.seeds
    path = export_model(seed.model, (1, 40), tmp_path / "m.onnx", "onnx")
    x = _batch()[:5]
    (logits,) = ReferenceEvaluator(str(path)).run(None, {"input": x.numpy()})
    with torch.no_grad():
        expected = seed.model(x).numpy()
    assert logits.shape == (5, 10)
    assert abs(logits - expected).max() < 1e-4
