"""The SB3 agents' checkpoint files as data: random states as JSON, the replay buffer as arrays,
and the archive's pickled entries replaced by the live agent's own (see ``nas_gym.agents.sb3``).

SB3 pickles three things a resumed run would load: random states and replay buffers through
``pickle``, and ``:serialized:`` entries of its ``.zip`` archive through cloudpickle. Loading any
of them runs whatever code the file names, so none of them is written or read here.
"""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_gym.storage.atomic import atomic_write
from nas_gym.storage.npz import load_arrays

REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def rng_to_json(states: tuple) -> dict[str, Any]:
    """``(random.getstate(), np.random.get_state(), torch.get_rng_state())`` as JSON-ready values."""
    py, np_state, torch_state = states
    return {"random": [py[0], list(py[1]), py[2]],
            "numpy": [np_state[0], [int(x) for x in np_state[1]], int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "torch": base64.b64encode(torch_state.numpy().tobytes()).decode()}


def rng_from_json(raw: dict[str, Any]) -> tuple:
    """The inverse of :func:`rng_to_json`, checked: a wrong type is a ``ValueError``."""
    version, internal, gauss = raw["random"]
    if not (isinstance(internal, list) and len(internal) == 625 and all(isinstance(x, int) for x in internal)):
        raise ValueError("random state: expected 625 integers")
    name, keys, pos, has_gauss, cached = raw["numpy"]
    keys = np.asarray(keys, dtype=np.int64)
    if name != "MT19937" or keys.shape != (624,) or keys.min() < 0 or keys.max() >= 2**32:
        raise ValueError("numpy random state: expected MT19937 with 624 32-bit keys")
    torch_bytes = np.frombuffer(base64.b64decode(raw["torch"], validate=True), dtype=np.uint8).copy()
    if torch_bytes.shape != torch.get_rng_state().shape:
        raise ValueError("torch random state: wrong size")
    return ((int(version), tuple(internal), None if gauss is None else float(gauss)),
            (name, keys.astype(np.uint32), int(pos), int(has_gauss), float(cached)),
            torch.from_numpy(torch_bytes))


def episode_infos(raw: Any) -> list[dict[str, float]]:
    """SB3's per-episode statistics (``r``, ``l``, ``t``) as numbers only."""
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise ValueError("episode statistics: expected a list of mappings")
    return [{k: float(v) for k, v in e.items() if k in ("r", "l", "t")} for e in raw]


def custom_objects(zip_path: Path, model: Any) -> dict[str, Any]:
    """For every entry of the archive that SB3 would unpickle, the live ``model``'s own value.

    :raises ValueError: the archive is unreadable, or asks to unpickle an entry this agent does not have.
    """
    with zipfile.ZipFile(zip_path) as z:
        data = json.loads(z.read("data"))
    if not isinstance(data, dict):
        raise ValueError(f"{zip_path.name}: its 'data' entry is not a mapping")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and ":serialized:" in value:
            if not hasattr(model, key):
                raise ValueError(f"{zip_path.name}: entry {key!r} holds pickled code this agent has no value for")
            out[key] = getattr(model, key)
    return out


def save_replay(path: Path, buffer: Any) -> None:
    """The replay buffer's arrays and position, as an ``.npz`` (no pickle)."""
    arrays = {name: getattr(buffer, name) for name in REPLAY_ARRAYS if getattr(buffer, name, None) is not None}
    arrays["position"] = np.array([buffer.pos, int(buffer.full)], dtype=np.int64)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_replay(path: Path, buffer: Any) -> None:
    """Fill ``buffer`` from :func:`save_replay`'s file; every array must match the live buffer's shape and dtype.

    :raises ValueError: a damaged file or one of another buffer.
    """
    names = [n for n in REPLAY_ARRAYS if getattr(buffer, n, None) is not None]
    arrays = load_arrays(path, [*names, "position"])
    for name in names:
        live = getattr(buffer, name)
        if arrays[name].shape != live.shape or arrays[name].dtype != live.dtype:
            raise ValueError(f"{path.name}: array {name!r} is {arrays[name].dtype}{arrays[name].shape}, the buffer's "
                             f"is {live.dtype}{live.shape}")
    position = arrays["position"]
    if position.shape != (2,) or not 0 <= position[0] < buffer.buffer_size or position[1] not in (0, 1):
        raise ValueError(f"{path.name}: its position is out of range")
    for name in names:
        getattr(buffer, name)[...] = arrays[name]
    buffer.pos, buffer.full = int(position[0]), bool(position[1])
