"""Configuration: YAML presets at the edge, frozen pydantic models inside.

A preset names a search space, a dataset, a trainer budget, a reward and an evaluator. Every
field is validated and unknown keys are rejected, so a typo fails before any training starts,
with one line that names the key and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nas_gym.data.settings import DataConfig
from nas_gym.errors import NasGymError
from nas_gym.spaces import SpaceError, resolve_space
from nas_gym.spaces.base import ArchitectureError, SearchSpace, SpaceParams

PRESET_DIRS = (
    Path(__file__).resolve().parent / "presets",  # inside an installed wheel
    Path(__file__).resolve().parent.parent / "envs_config",  # in a source checkout
)


class ConfigError(NasGymError, ValueError):
    """A config that cannot be used; the message is one line naming the field and the fix.

    Unprintable characters (a newline inside a YAML key or a path) are escaped here, once for
    every message, so the promise of one line does not rest on each caller.
    """

    def __init__(self, message: str) -> None:
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message)))


class _Frozen(BaseModel):
    # No NaN or infinity anywhere: a NaN weight or failure reward would turn every reward NaN
    # and poison the value estimates of every agent, long after the config was accepted.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TrainConfig(_Frozen):
    """The trainer's budget and recipe; all of it is part of the cache key."""

    epochs: int = Field(default=8, ge=1, le=10_000)
    batch_size: int = Field(default=128, ge=1, le=1_000_000)  # more would only be a typo's way to exhaust memory
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(default=3e-3, gt=0.0, le=10.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=5e-4, ge=0.0)
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    warmup_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    augment: bool = False
    seed: int = Field(default=0, ge=0, lt=2**63)  # torch seeds are 64-bit: larger ones fail every training
    max_params: int = Field(default=5_000_000, ge=1)


class RuntimeConfig(_Frozen):
    """Where and how training runs.

    On a CPU none of it is part of the cache key: the CPU trainer computes in fp32 and is
    deterministic, so results do not depend on it and a cache filled on one machine stays usable
    on another. On an accelerator the device type and the settings that change its numerics
    (precision, TF32, determinism) join the key (``nas_gym.training.numerics.numerics_identity``): a bf16
    or TF32 run differs from an fp32 one by as much as a change of seed.

    :param device: ``auto`` (cuda, else mps, else cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``;
        a GPU index beyond the visible devices fails at start (``nas_gym.training.device.resolve_device``).
    :param amp: mixed precision on CUDA: bf16 where the GPU has it natively (compute capability
        8.0 and up), else fp16 with loss scaling. Ignored on CPU and MPS (fp32).
    :param tf32: let CUDA matmuls and convolutions use TF32 (GPUs of capability 8.0 and up; on
        by default for convolutions in PyTorch). Part of the key where it takes effect.
    :param deterministic: CUDA kernels that give the same bits on every run (cuDNN autotuning
        off, ``torch.use_deterministic_algorithms``, the cuBLAS workspace setting, a
        deterministic global pooling): slower, and reproducible only on the same GPU model and
        software. CPU training is deterministic either way.
    """

    device: str = "auto"
    threads: int | None = Field(default=None, ge=1)
    amp: bool = True
    tf32: bool = True
    deterministic: bool = False

    @field_validator("device")
    @classmethod
    def _device(cls, device: str) -> str:
        # Syntax only: the config imports no torch; whether cuda:N exists is checked when the
        # device is resolved, before anything trains.
        if device not in ("auto", "cpu", "cuda", "mps") and not re.fullmatch(r"cuda:\d{1,3}", device):
            raise ValueError(f"device {device!r} is not one of auto, cpu, cuda, cuda:N (N a GPU index), mps")
        return device


class RewardConfig(_Frozen):
    """How an evaluation becomes a reward (see ``nas_gym.rewards``).

    :param failure_reward: reward of an architecture that failed to train; None means chance
        level, 1 / num_classes, as MetaQNN did.
    :param invalid_action_reward: reward when an agent sends an action the mask forbids.
    :param cost: ``params``, ``flops``, ``latency`` (measured milliseconds of a batch-1
        forward pass; only the ``train`` evaluator measures it, and it is not reproducible
        across machines: see ``nas_gym.rewards``) or ``latency_model`` (those milliseconds
        predicted from this machine's per-layer table: any evaluator, deterministic; see
        ``nas_gym.latency.model``).
    :param latency_table: the table ``latency_model`` reads; ``auto`` means the preset's own file
        under ``$NAS_GYM_LATENCY`` or ``~/.cache/nas-gym/latency``, where
        ``nas-gym latency profile`` writes it.
    """

    kind: Literal["accuracy", "mnas", "constraint"] = "accuracy"
    cost: Literal["params", "flops", "latency", "latency_model"] = "params"
    latency_table: str = "auto"
    target: float | None = Field(default=None, gt=0.0)
    weight: float = -0.07
    failure_reward: float | None = None
    invalid_action_reward: float = 0.0

    @model_validator(mode="after")
    def _target_needed(self) -> RewardConfig:
        if self.kind != "accuracy" and self.target is None:
            raise ValueError(f"reward kind {self.kind!r} needs a positive 'target' cost")
        return self


class EvaluatorConfig(_Frozen):
    """Which evaluator scores architectures, and where results are cached.

    :param kind: ``train`` (real training), ``table`` (the shipped benchmark), ``proxy:<name>``
        (a zero-cost proxy), ``supernet`` (one weight-sharing network trained once per run, each
        architecture scored as a path through it) or ``synthetic`` (an instant made-up score with a known optimum,
        for testing agents and env logic).
    :param cache: SQLite file; ``auto`` means ``~/.cache/nas-gym/evaluations.sqlite``, None disables.
    :param backend: where ``train`` runs the architectures of one batch: ``serial`` (in this
        process), ``process`` (a pool of spawned worker processes on this host) or ``ray``
        (Ray tasks, local or on a cluster). None of these fields is part of the cache key:
        every backend gives the same results.
    :param workers: worker processes (``process``), or CPUs of a local Ray instance (``ray``).
    :param ray_address: an existing Ray cluster to join; None starts a local one.
    :param gpus_per_eval: GPUs each worker holds (process or Ray; for ``serial``, the one process
        trains on ``runtime.device``); a fraction packs several workers on one GPU (``0.5``: two
        per GPU; see docs/gpu.md on NVIDIA MPS). None (default): 1 when ``runtime.device`` is
        ``cuda`` or ``auto`` and GPUs are visible, else 0 (CPU). A request for more GPUs than
        there are fails before any worker starts (``nas_gym.execution.gpus``).
    :param max_retries: how often an architecture is retried after its worker process died
        (killed, out of host memory) before it is recorded as ``worker_died``.
    :param threads_per_worker: torch CPU threads in each worker: on small networks two
        one-thread workers beat one two-thread worker.
    :param high_epochs: multi-fidelity mode (``train`` only): rewards still come from
        ``train.epochs``, and architectures whose reward is in the top ``promote_top`` of those
        seen so far are trained again for ``high_epochs``; the run's leaderboard ranks by the
        highest fidelity seen. None (default) turns it off.
    :param promote_top: the top fraction, in (0, 1], re-trained at ``high_epochs``.
    :param table_seed: what the ``table`` evaluator returns: ``draw`` (one of the table's seeds
        per architecture, drawn from the run's seed, as NAS-Bench-201's simulations do),
        ``mean`` (the mean over seeds: less noisy than any real search), or one seed.
    :param epochs: ``table`` only: answer with the validation accuracy after this many epochs
        and charge that many epochs of recorded time; needs a table with learning curves. None:
        the final epoch.
    :param supernet_epochs: ``supernet`` only: epochs (passes over the training split, one random
        path per batch) the shared weights train for, once per run, with the ``train`` recipe.
    :param supernet_val_samples: ``supernet`` only: validation samples (a fixed subset) each
        architecture is scored on; scoring time grows linearly with it, ties shrink with it.
    :param supernet_batch_size: ``supernet`` only: the batch its shared weights train with; 0
        (default) means ``train.batch_size``, lowered to what fits in memory
        (``nas_gym.oneshot.memory``).
    """

    kind: str = "train"
    cache: str | None = "auto"
    backend: Literal["serial", "process", "ray"] = "serial"
    workers: int = Field(default=1, ge=1)
    ray_address: str | None = None
    gpus_per_eval: float | None = Field(default=None, ge=0.0, le=1.0)
    max_retries: int = Field(default=2, ge=0)
    threads_per_worker: int = Field(default=1, ge=1)
    high_epochs: int | None = Field(default=None, ge=1, le=10_000)
    promote_top: float = Field(default=0.1, gt=0.0, le=1.0)
    table_seed: int | Literal["draw", "mean"] = "draw"
    epochs: int | None = Field(default=None, ge=1, le=10_000)
    supernet_epochs: int = Field(default=30, ge=1, le=10_000)
    supernet_val_samples: int = Field(default=256, ge=1)
    supernet_batch_size: int = Field(default=0, ge=0)

    @field_validator("kind")
    @classmethod
    def _kind(cls, kind: str) -> str:
        if kind not in ("train", "table", "synthetic", "surrogate", "supernet") and not kind.startswith("proxy:"):
            raise ValueError(f"evaluator kind {kind!r} is not one of train, table, surrogate, supernet, synthetic, "
                             "proxy:<name>")
        return kind

    @model_validator(mode="after")
    def _epochs_for_tables(self) -> EvaluatorConfig:
        if self.epochs is not None and self.kind != "table":
            raise ValueError(f"epochs is read by the table evaluator only, not {self.kind!r}; remove evaluator.epochs "
                             "(real training takes its budget from train.epochs)")
        return self


NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_name(name: str, what: str = "name") -> str:
    """A name that becomes part of a path (a run folder, a table's file): letters, digits, ``_``,
    ``.``, ``-``, at most 64 characters, no ``..``; so it can never leave the folder it is put in.

    :raises ValueError: naming ``what`` and the rule.
    """
    if not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise ValueError(f"{what} {name!r} must be 1-64 letters, digits, '_', '.' or '-' (starting with a letter "
                         "or digit, no '..'), since it names folders and files")
    return name


class Config(_Frozen):
    """A whole preset."""

    name: str = "custom"
    description: str = ""
    space: SerializeAsAny[SpaceParams]
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    reward: RewardConfig = RewardConfig()
    evaluator: EvaluatorConfig = EvaluatorConfig()

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        return check_name(name)

    @model_validator(mode="after")
    def _data_fills_a_batch(self) -> Config:
        # A user's data smaller than one batch would train one partial batch per epoch: a
        # budget that means something else than the preset says. Built-in sets are far larger.
        size = self.data.info().train_size
        if size is not None and size < self.train.batch_size:
            raise ValueError(f"train.batch_size {self.train.batch_size} is more than the {size} training samples of "
                             f"{self.data.root or self.data.path}; lower train.batch_size or add samples")
        return self

    @model_validator(mode="after")
    def _latency_needs_training(self) -> Config:
        # Tables and proxies have no model on a device to time; failing here beats a reward
        # that silently treats every architecture as free.
        if self.reward.cost == "latency" and self.evaluator.kind != "train":
            raise ValueError(f"reward.cost 'latency' is measured by the 'train' evaluator only, "
                             f"not {self.evaluator.kind!r}; use cost 'params' or 'flops' with it")
        return self

    @field_validator("reward")
    @classmethod
    def _latency_table_path(cls, reward: RewardConfig, info: ValidationInfo) -> RewardConfig:
        # The reward sees only its own section, and the default table belongs to the space and
        # the data shape: resolved here, where both are known (and valid), into one path.
        if reward.cost != "latency_model" or reward.latency_table != "auto" or not {"space", "data"} <= info.data.keys():
            return reward
        from nas_gym.latency.model import default_table_path, preset_identity

        data = info.data["data"].info()
        identity = preset_identity(info.data["space"], data.shape, data.classes)
        return reward.model_copy(update={"latency_table": str(default_table_path(identity))})

    @model_validator(mode="after")
    def _latency_table_fits(self) -> Config:
        # A missing table, or one measured on another machine or for another preset, stops the
        # run here, before anything trains, rather than at its first reward.
        if self.reward.cost == "latency_model":
            from nas_gym.latency.model import preset_identity, verified_table

            identity = preset_identity(self.space, self.input_shape, self.num_classes)
            verified_table(self.reward.latency_table, identity, self.runtime.device, self.name)
        return self

    @model_validator(mode="after")
    def _high_fidelity_is_higher(self) -> Config:
        high = self.evaluator.high_epochs
        if high is not None and (self.evaluator.kind != "train" or high <= self.train.epochs):
            raise ValueError(f"evaluator.high_epochs {high} needs evaluator kind 'train' and more epochs than "
                             f"train.epochs ({self.train.epochs}); raise it or set it to null")
        return self

    @field_validator("space", mode="before")
    @classmethod
    def _space_params(cls, value: Any) -> Any:
        """The ``space:`` mapping validated by its own space's ``Params`` (``kind`` defaults to
        the layer chain), so a new space brings its fields without an edit here."""
        if isinstance(value, SpaceParams) or not isinstance(value, Mapping):
            return value
        kind = value.get("kind", "layer_chain")
        try:
            space_cls = resolve_space(str(kind))
        except SpaceError as e:
            raise ValueError(str(e)) from None
        return space_cls.Params.model_validate({**value, "kind": kind})

    @model_validator(mode="after")
    def _space_builds(self) -> Config:
        # A space can be unusable only on this data (a layer chain whose pooling rules and
        # min_depth leave no chain): failing here beats failing in the middle of a search.
        try:
            self.search_space()
        except (ArchitectureError, SpaceError) as e:
            raise ValueError(str(e)) from None
        return self

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.data.info().shape

    @property
    def num_classes(self) -> int:
        return self.data.info().classes

    def search_space(self, input_shape: tuple[int, ...] | None = None) -> SearchSpace:
        """The search space for data of one sample's ``input_shape`` (by default the dataset's
        known shape)."""
        shape = self.input_shape if input_shape is None else tuple(input_shape)
        return resolve_space(self.space.kind).from_params(self.space, shape)

    def context_hash(self) -> str:
        """Digest of everything besides the architecture that decides a training result:
        dataset, split and trainer recipe (seed included). Part of every cache key."""
        payload = json.dumps(
            {"data": self.data.identity(), "train": self.train.model_dump()},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:20]


def preset_names() -> list[str]:
    names = set()
    for d in PRESET_DIRS:
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.yaml"))
    return sorted(names)


def _find_preset(source: str | Path) -> Path:
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; give a preset name ({', '.join(preset_names())}) or a YAML path")
        return path
    for d in PRESET_DIRS:
        candidate = d / f"{source}.yaml"
        if candidate.is_file():
            return candidate
    raise ConfigError(f"unknown preset {str(source)!r}; choose one of {', '.join(preset_names())} or give a YAML path")


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into ``base``; dotted keys (``train.epochs``) address nested fields."""
    out = dict(base)
    for key, value in overrides.items():
        head, _, rest = str(key).partition(".")
        if rest:
            value = {rest: value}
        if isinstance(value, Mapping) and isinstance(out.get(head), Mapping):
            out[head] = _merge(out[head], value)
        else:
            out[head] = value
    return out


def _one_line(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "<top level>"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key; check its spelling against the fields of this section"
    elif first["type"] == "literal_error":
        msg = f"{msg}; got {first.get('input')!r}"
    more = f" (and {len(error.errors()) - 1} more)" if len(error.errors()) > 1 else ""
    return f"{source}: {loc}: {msg}{more}"


def load_config(source: str | Path | Config = "mnist1d", overrides: Mapping[str, Any] | None = None) -> Config:
    """Load a preset by name or a YAML path, apply ``overrides``, validate.

    :raises ConfigError: one line naming the file, the key and what is allowed.
    """
    if isinstance(source, Config):
        raw, label = source.model_dump(), source.name
    else:
        path = _find_preset(source)
        label = str(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            where = getattr(e, "problem_mark", None)
            line = f" line {where.line + 1}" if where else ""
            detail = getattr(e, "problem", None) or str(e).partition("\n")[0]  # ReaderError: no .problem
            raise ConfigError(f"{path}:{line} is not valid YAML; fix the syntax ({detail})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections (space, data, train, ...), got {type(raw).__name__}")
    if overrides:
        raw = _merge(raw, overrides)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_one_line(e, label)) from None


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.epochs=2", "space.max_depth=3"]`` -> a dotted-key mapping; values are YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.epochs=4")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({getattr(e, 'problem', None) or e}); "
                              "quote it, e.g. --set 'name=\"a: b\"'") from None
    return out
