"""Retrain a chosen architecture at full budget and report its test accuracy over seeds.

Search ranks architectures with a short budget and scores them on the validation split; neither
number is what the chosen network is worth. Retraining is the last step, and the only one
that touches the test split:

* **Data**: train and validation merged (``nas_gym.data.merge_train_val``) with
  ``data.train_fraction`` set back to 1: validation has done its job (ranking) and more
  training data is worth more now. The test split is the same fixed split as in search.
* **Budget**: ``default_epochs`` = ``max(4 x the preset's search epochs, 20)``. Search presets
  are sized to rank many networks fast, a few epochs each, and short runs rank about as long
  runs do (Spearman ~0.9 between 12 and 200 epochs on NAS-Bench-201) but stop short of what a
  network reaches: on MNIST-1D a small CNN needs about 20 epochs to reach the paper's ~93-94%
  (measured on MNIST-1D). The learning-rate schedule stretches with the step count, so nothing else changes.
* **Seeds**: 0..K-1, each a different initialisation, batch order and dropout stream. The
  spread between seeds is often as large as the gap between good architectures, so the report
  is the mean and the sample standard deviation (n - 1; none for a single seed).
* **Saved models**: every seed's model, not only the best one. Picking the seed with the best
  test accuracy would be selecting on the test set, and the number reported next to that file
  would be optimistic; every seed is the same recipe, so any one (seed 0 by default) is a fair
  representative. A file holds the state dict plus everything needed to rebuild the module
  (architecture text, input shape, number of classes, preset name): ``load_model(path)``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas_gym.config import Config
from nas_gym.data import load_dataset, merge_train_val
from nas_gym.errors import NasGymError
from nas_gym.spaces import space_from_params
from nas_gym.spaces.base import Architecture
from nas_gym.training.train import count_params, forked_rng, resolve_device, seed_torch, train

CPU = torch.device("cpu")

FORMAT, FORMAT_VERSION = "nas-gym-model", 1
EXPORTS = ("torchscript", "onnx")
RETRAIN_FACTOR, RETRAIN_MIN_EPOCHS = 4, 20
REPORT_NAME = "retrain.json"


class RetrainError(NasGymError, ValueError):
    """Input retraining cannot use; one line naming what is wrong and the fix."""


class ModelFileError(NasGymError, ValueError):
    """A file that is not a nas-gym model file (or one of a newer format)."""


def default_epochs(config: Config) -> int:
    """The full budget: four times the search budget, and at least 20 epochs (see the module docstring)."""
    return max(RETRAIN_FACTOR * config.train.epochs, RETRAIN_MIN_EPOCHS)


def resolve_target(target: str) -> tuple[str, Path | None]:
    """An architecture text, or a run folder whose best architecture (``evaluations.csv``, read
    as ``nas-gym leaderboard`` does) is taken; returns the architecture's text (parsed later by
    the preset's space) and the folder, if any.

    :raises RetrainError: a folder without a successful evaluation, or a path that does not exist.
    """
    from nas_gym.runs.leaderboard import LeaderboardError, read_entries

    path = Path(target)
    if path.is_dir():
        try:
            entries, _ = read_entries([path])
        except (LeaderboardError, KeyError, ValueError) as e:
            raise RetrainError(f"{target}: cannot read a best architecture ({e})") from None
        if not entries:
            raise RetrainError(f"{target}: no architecture in evaluations.csv trained successfully; nothing to retrain")
        return entries[0].arch, path
    if "/" in target or os.sep in target:
        raise RetrainError(f"{target}: no such run folder; give a run folder made by nas-gym search or an architecture text")
    return target, None


def check_export(export: str | None) -> None:
    """Fail before any training on an unknown export format or a missing exporter package.

    torch's ONNX exporter (the torch.export-based one, the default since torch 2.9) needs both
    ``onnx`` and ``onnxscript``; neither is a dependency of nas-gym.
    """
    if export is None:
        return
    if export not in EXPORTS:
        raise RetrainError(f"--export {export!r} is not one of {', '.join(EXPORTS)}")
    if export == "onnx":
        missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
        if missing:
            raise RetrainError(f"--export onnx needs the package(s) {', '.join(missing)}, not installed; "
                               f"pip install {' '.join(missing)}")


def save_model(model: nn.Module, path: Path, *, arch: Architecture, config: Config, input_shape: tuple[int, ...],
               num_classes: int, meta: dict[str, Any] | None = None) -> Path:
    """One file with the weights and what rebuilds the module; plain types only, so
    ``torch.load(weights_only=True)`` (no arbitrary unpickling) can read it."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": FORMAT_VERSION, "arch": arch.text(), "input_shape": list(input_shape),
               "num_classes": int(num_classes), "preset": config.name,
               "space": config.space.model_dump(mode="json"), "meta": dict(meta or {}), "state_dict": state}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> nn.Module:
    """The module saved by ``nas-gym retrain`` (``save_model``), on ``device``, in eval mode.

    :raises ModelFileError: the file is missing, not a nas-gym model file, or of a newer format.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a foreign file
        raise ModelFileError(f"{path}: not a nas-gym model file ({type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a nas-gym model file; it was not written by nas-gym retrain")
    if payload.get("version", 0) > FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format {payload['version']} is newer than this nas-gym reads "
                             f"({FORMAT_VERSION}); upgrade nas-gym")
    shape = tuple(payload["input_shape"])
    if "space" in payload:
        space = space_from_params(payload["space"], shape)
        model = space.build_model(space.parse(payload["arch"]), shape, payload["num_classes"])
    else:  # written before spaces were pluggable: a layer chain, whose builder needs no space
        from nas_gym.spaces.layer_chain.chain import Chain
        from nas_gym.spaces.layer_chain.model import build_model

        model = build_model(Chain.parse(payload["arch"]), shape, payload["num_classes"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()


def export_model(model: nn.Module, input_shape: tuple[int, ...], path: Path, kind: str) -> Path:
    """Write ``model`` as TorchScript (``torch.jit.script``: runs without Python, in LibTorch) or
    ONNX, both with a free batch dimension.

    Recent torch marks ``torch.jit`` deprecated in favour of ``torch.export``; the warning is
    silenced here because TorchScript is exactly what was asked for, and ``torch.jit.load``
    still reads it.
    """
    model = model.cpu().eval()
    if kind == "torchscript":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
            torch.jit.script(model).save(str(path))
        return path
    check_export(kind)
    example = torch.zeros((2, *input_shape))  # batch 2: torch.export would specialise a batch of 1
    batch = torch.export.Dim("batch", min=1)
    torch.onnx.export(model, (example,), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_shapes=({0: batch},), dynamo=True)
    return path


@dataclass(frozen=True)
class SeedResult:
    """One seed's retraining; ``model`` (on the CPU, eval mode) only in memory, not in the report."""

    seed: int
    status: str
    test_acc: float | None
    train_loss: float
    seconds: float
    reason: str = ""
    model_path: Path | None = None
    export_path: Path | None = None
    model: nn.Module | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        loss = self.train_loss if math.isfinite(self.train_loss) else None  # JSON has no NaN
        return {"seed": self.seed, "status": self.status, "test_acc": self.test_acc, "train_loss": loss,
                "seconds": self.seconds, "reason": self.reason,
                "model": None if self.model_path is None else str(self.model_path),
                "export": None if self.export_path is None else str(self.export_path)}


@dataclass(frozen=True)
class RetrainReport:
    """What ``retrain`` did and measured; ``to_dict`` is the JSON written next to the models."""

    arch: str
    preset: str
    source: str | None
    epochs: int
    params: int
    flops: int
    train_size: int
    test_size: int
    device: str
    out_dir: Path
    seeds: tuple[SeedResult, ...]

    @property
    def test_accs(self) -> list[float]:
        return [s.test_acc for s in self.seeds if s.test_acc is not None]

    @property
    def test_acc_mean(self) -> float | None:
        return statistics.fmean(self.test_accs) if self.test_accs else None

    @property
    def test_acc_std(self) -> float | None:
        """Sample standard deviation over the seeds that trained; None below two of them."""
        return statistics.stdev(self.test_accs) if len(self.test_accs) > 1 else None

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "preset": self.preset, "source": self.source, "epochs": self.epochs,
                "params": self.params, "flops": self.flops, "data": "train+validation", "train_size": self.train_size,
                "test_size": self.test_size, "device": self.device, "test_acc_mean": self.test_acc_mean,
                "test_acc_std": self.test_acc_std, "seeds": [s.to_dict() for s in self.seeds]}


def retrain(config: Config, arch: Architecture, *, out_dir: Path, epochs: int | None = None, seeds: int = 1,
            export: str | None = None, source: Path | None = None,
            on_seed: Callable[[SeedResult], None] | None = None) -> RetrainReport:
    """Train ``arch`` on train+validation for seeds 0..``seeds``-1, score each on the test split,
    save each model (``model-seed{N}.pt``) and the report (``retrain.json``) in ``out_dir``.

    Any chain the builder can build for the dataset is accepted, not only members of the
    preset's search space, so a hand-edited variant of a found network can be retrained too.
    A seed whose training fails (NaN loss, out of memory) is reported as failed, with no model.

    :param epochs: default ``default_epochs(config)``.
    :param export: also write each model as ``torchscript`` (``.torchscript.pt``) or ``onnx``.
    :param source: the run folder the architecture came from, recorded in the report.
    :raises RetrainError: bad epochs, seeds or export, or an architecture too deep for the input.
    """
    epochs = default_epochs(config) if epochs is None else epochs
    if epochs < 1 or seeds < 1:
        raise RetrainError(f"need --epochs >= 1 and --seeds >= 1, got {epochs} and {seeds}")
    check_export(export)
    try:
        device = resolve_device(config.runtime.device)
    except ValueError as e:
        raise RetrainError(f"runtime.device: {e}") from None
    data = load_dataset(config.data.model_copy(update={"train_fraction": 1.0}))
    data = merge_train_val(data).to(device)
    space = config.search_space(data.input_shape)
    try:
        params = count_params(space.build_model(arch, data.input_shape, data.num_classes))
    except ValueError as e:
        raise RetrainError(f"{arch.text()}: {e}") from None
    flops = space.count_flops(arch, data.input_shape, data.num_classes)
    out_dir.mkdir(parents=True, exist_ok=True)

    results = []
    for seed in range(seeds):
        recipe = config.train.model_copy(update={"epochs": epochs, "seed": seed})
        with forked_rng(CPU):  # the same initial weights as search gives this seed
            seed_torch(seed, CPU)
            model = space.build_model(arch, data.input_shape, data.num_classes)
        m = train(model, data, recipe, config.runtime, want_test=True)
        model_path = export_path = None
        if m.ok:
            model = model.cpu().eval()
            meta = {"seed": seed, "epochs": epochs, "test_acc": m.test_acc, "data": "train+validation"}
            model_path = save_model(model, out_dir / f"model-seed{seed}.pt", arch=arch, config=config,
                                    input_shape=data.input_shape, num_classes=data.num_classes, meta=meta)
            if export is not None:
                suffix = ".torchscript.pt" if export == "torchscript" else ".onnx"
                export_path = export_model(model, data.input_shape, out_dir / f"model-seed{seed}{suffix}", export)
        result = SeedResult(seed, m.status, m.test_acc, m.train_loss, m.seconds, m.reason, model_path, export_path,
                            model if m.ok else None)
        results.append(result)
        if on_seed is not None:
            on_seed(result)

    report = RetrainReport(arch.text(), config.name, None if source is None else str(source), epochs, params, flops,
                           len(data.y_train), len(data.y_test), str(device), out_dir, tuple(results))
    (out_dir / REPORT_NAME).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report
