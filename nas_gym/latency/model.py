"""A latency model of this machine: a table of per-layer times, summed over a network's layers.

The table (``nas-gym latency profile``, ``nas_gym.latency.profile``) holds the median time of a
batch-1 forward pass of every layer the preset's space can produce, at every input shape it
can see it at, measured on one device with one torch thread, plus a line fitted on a few whole
networks: ``predicted ms = scale * sum of the layers' times + intercept``. The intercept is what
a whole network costs beyond its layers (the container's calls, the timer); the scale, what
running in sequence changes (caches shared between layers, Python work between them). nn-Meter
and HW-NAS-Bench predict latency the same way, as a sum of per-kernel measurements.

A prediction is a dictionary lookup per layer: it costs nothing, needs no torch, and gives the
same number in every run, unlike live timing (``reward.cost: latency``). It holds only for the
machine, torch build and preset it was measured for, so a table records all three and
``check_table`` refuses a table measured elsewhere.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nas_gym.errors import NasGymError
from nas_gym.latency.layers import Layers, layers_for
from nas_gym.spaces import SpaceParams, space_from_params
from nas_gym.storage.atomic import atomic_write_text

FORMAT = 1
ENV_VAR = "NAS_GYM_LATENCY"  # folder of the default tables
DEFAULT_DIR = Path("~/.cache/nas-gym/latency")


class LatencyTableError(NasGymError, ValueError):
    """A table that is missing, unreadable or measured for another machine, torch or preset."""


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_label(device: Any) -> str:
    """``cpu``, or an accelerator's type and name (``cuda NVIDIA A100-SXM4-40GB``): the CPU
    name alone does not say which GPU a table was measured on."""
    import torch

    if device.type == "cuda":
        return f"cuda {torch.cuda.get_device_name(device)}"
    return device.type


def preset_identity(space: Any, input_shape: tuple[int, ...], num_classes: int) -> dict[str, Any]:
    """What decides the layers and shapes a table covers: the ``space:`` section (a SpaceParams
    or its mapping) and the data's sample shape and class count (the head's width)."""
    params = space.model_dump(mode="json") if isinstance(space, SpaceParams) else dict(space)
    return {"space": params, "input_shape": list(input_shape), "num_classes": int(num_classes)}


def preset_hash(identity: dict[str, Any]) -> str:
    """A digest of ``preset_identity`` (a table's ``preset`` also names the preset: not hashed)."""
    payload = {k: identity[k] for k in ("space", "input_shape", "num_classes")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def default_table_path(identity: dict[str, Any]) -> Path:
    """``$NAS_GYM_LATENCY/<preset hash>.json``, or under ``~/.cache/nas-gym/latency``."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR).expanduser() / f"{preset_hash(identity)}.json"


@dataclass(frozen=True)
class LatencyTable:
    """One machine's table for one preset.

    :param entries: median milliseconds of each layer key (``nas_gym.latency.layers``).
    :param intercept_ms: fitted milliseconds a whole network adds to its layers' sum.
    :param scale: fitted factor on the layers' sum.
    :param fit: how the line was fitted: the architectures, the seed, the measured times and residuals.
    """

    cpu: str
    device: str
    torch: str
    threads: int
    preset: dict[str, Any]
    repeats: int
    warmup: int
    entries: dict[str, float]
    intercept_ms: float
    scale: float
    fit: dict[str, Any]
    profile_seconds: float
    format: int = FORMAT
    _memo: dict[str, float] = field(default_factory=dict, init=False, repr=False, compare=False)

    @functools.cached_property
    def space(self) -> Any:
        return space_from_params(self.preset["space"], tuple(self.preset["input_shape"]))

    @functools.cached_property
    def layers(self) -> Layers:
        return layers_for(self.space, tuple(self.preset["input_shape"]), self.preset["num_classes"])

    def layer_sum(self, arch: Any) -> float:
        """Sum of the table's times over ``arch``'s layers, in ms, in the layers' order.

        :raises LatencyTableError: a layer the table does not hold (a table edited by hand).
        """
        try:
            return sum(self.entries[k] for k in self.layers.keys(arch))
        except KeyError as e:
            raise LatencyTableError(f"latency table has no entry {e.args[0]}; profile again with "
                                    "`nas-gym latency profile`") from None

    def predict_ms(self, arch: Any) -> float:
        """Predicted batch-1 latency of ``arch`` (an architecture or its text), in ms; memoised.

        Never negative: the fitted line's intercept can be negative (a profile on a busy machine),
        which would put the smallest architectures below zero."""
        text = arch if isinstance(arch, str) else arch.text()
        if text not in self._memo:
            parsed = self.space.parse(text) if isinstance(arch, str) else arch
            self._memo[text] = max(0.0, self.scale * self.layer_sum(parsed) + self.intercept_ms)
        return self._memo[text]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("_memo")
        return out

    def save(self, path: Path) -> None:
        """Written to a temporary file and renamed, so a reader never sees half a table."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> LatencyTable:
        """:raises OSError: no file; LatencyTableError: not a table of this format."""
        text = path.read_text()
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict) or raw.get("format") != FORMAT:
                raise ValueError(f"format {raw.get('format') if isinstance(raw, dict) else None!r}, expected {FORMAT}")
            _check_fields(raw)
            return cls(**raw)
        except (ValueError, TypeError, AttributeError) as e:
            raise LatencyTableError(f"reward.latency_table {path} is not a latency table ({e})") from None


def _positive(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _check_fields(raw: dict[str, Any]) -> None:
    """Types and ranges of a table's fields, checked on load: a negative or NaN time would turn
    into a reward above the accuracy, or a NaN one, far from the file that caused it.

    :raises ValueError: naming the first bad field.
    """
    for key in ("cpu", "device", "torch"):
        if not isinstance(raw.get(key), str):
            raise ValueError(f"{key} is not text")
    for key in ("threads", "repeats", "warmup"):
        if type(raw.get(key)) is not int or raw[key] < 0:
            raise ValueError(f"{key} is not a count")
    preset = raw.get("preset")
    if (not isinstance(preset, dict) or not isinstance(preset.get("space"), dict)
            or not isinstance(preset.get("input_shape"), list) or not all(type(n) is int and n > 0 for n in preset["input_shape"])
            or type(preset.get("num_classes")) is not int or preset["num_classes"] < 1):
        raise ValueError("preset is not a space, input shape and class count")
    entries = raw.get("entries")
    if not isinstance(entries, dict) or not entries:
        raise ValueError("entries is empty or not a mapping of layer -> milliseconds")
    if not all(isinstance(k, str) and _positive(v) for k, v in entries.items()):
        raise ValueError("entries holds a time that is not a positive, finite number of milliseconds")
    for key in ("scale", "intercept_ms"):  # fitted on noisy timings: either sign, but a number
        value = raw.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"{key} is not a finite number")
    if not isinstance(raw.get("fit"), dict) or not isinstance(raw.get("profile_seconds"), int | float):
        raise ValueError("fit or profile_seconds has the wrong type")


def check_table(table: LatencyTable, path: Path, *, device: str, torch_version: str, identity: dict[str, Any],
                preset: str, fix: str) -> None:
    """Refuse a table measured on another CPU or device, with another torch, or for another
    preset (``identity``, named ``preset``): its times would be confidently wrong.

    :raises LatencyTableError: one line naming what differs and ``fix``.
    """
    here = {"CPU": cpu_name(), "device": device, "torch": torch_version,
            "preset": f"{preset} {preset_hash(identity)}"}
    there = {"CPU": table.cpu, "device": table.device, "torch": table.torch,
             "preset": f"{table.preset.get('name')} {preset_hash(table.preset)}"}
    if preset_hash(identity) == preset_hash(table.preset):  # the same space and data under another name
        there["preset"] = here["preset"]
    for what, value in here.items():
        if there[what] != value:
            raise LatencyTableError(f"reward.latency_table {path} was measured for {what} {there[what]!r}, "
                                    f"this run uses {value!r}; profile it here with {fix}")


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int) -> LatencyTable:
    return LatencyTable.load(Path(path))


def load_table(path: str | os.PathLike[str], fix: str = "`nas-gym latency profile --config PRESET`") -> LatencyTable:
    """The table at ``path``, read once per process (again if the file changed).

    :raises LatencyTableError: one line naming the file and ``fix``.
    """
    p = Path(path)
    try:
        return _load_cached(str(p), p.stat().st_mtime_ns)
    except (OSError, UnicodeDecodeError):
        raise LatencyTableError(f"reward.latency_table {p} does not exist or cannot be read; "
                                f"build it with {fix}") from None
    except LatencyTableError as e:
        raise LatencyTableError(f"{e}; build it again with {fix}") from None


def verified_table(path: str | os.PathLike[str], identity: dict[str, Any], device: str, preset: str) -> LatencyTable:
    """The table at ``path``, checked against this machine, its torch, ``device`` (a
    ``runtime.device`` value) and the preset ``identity``: what a config asking for
    ``reward.cost: latency_model`` is validated with, before anything runs.

    :raises LatencyTableError: one line naming the fix, ``nas-gym latency profile --config <preset>``.
    :raises ValueError: a space the model cannot decompose.
    """
    import torch

    from nas_gym.training.device import resolve_device

    shape = tuple(identity["input_shape"])
    layers_for(space_from_params(identity["space"], shape), shape, identity["num_classes"])  # a space it can cut up
    fix = f"`nas-gym latency profile --config {preset}` (with this run's --set options, if any)"
    table = load_table(path, fix)
    check_table(table, Path(path), device=device_label(resolve_device(device)), torch_version=torch.__version__,
                identity=identity, preset=preset, fix=fix)
    return table


def predict_ms(path: str | os.PathLike[str], arch: Any) -> float:
    """The reward's cost under ``reward.cost: latency_model`` (see ``nas_gym.rewards``)."""
    return load_table(path).predict_ms(arch)
