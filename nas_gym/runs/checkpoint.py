"""Checkpoints of a search, so that ``nas-gym search --resume RUN_DIR`` continues a stopped run.

A search trains networks for hours; Ctrl-C, ``kill -9`` or a power cut must cost at most the
episodes since the last checkpoint, and even those cost no training, because their finished
evaluations are in the persistent cache (after a power cut, all but the last few that had not
reached the disk). What the cache cannot hold is the agent's state
(Q-table, population, SB3 model and replay buffer, random generators), the recorder's
counters and the evaluator's own state (its budget charged so far, a multi-fidelity evaluator's
confirmed results); those are saved here every few episodes.

Layout inside the run folder::

    checkpoint.json        the manifest: who ran what, how far; replaced atomically
    checkpoint/ep-000040/  the agent's own files (``agent.save(dir / "agent")``) and
                           ``search.json`` (the recorder's counters, the evaluator's ``state()``) after 40 episodes

The manifest is the commit point. A checkpoint folder is written under a temporary name,
fsynced, renamed, and only then does the manifest start pointing at it; so a crash at any
moment leaves either the previous checkpoint or the new one, never a half-written mix. That
also makes agents whose ``save`` writes several files (DQN: model and replay buffer) atomic
without their cooperation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas_gym.config import Config
from nas_gym.errors import NasGymError
from nas_gym.storage import trust
from nas_gym.storage.atomic import atomic_write_text, fsync_dir

if TYPE_CHECKING:
    from nas_gym.agents.base import BaseAgent

MANIFEST = "checkpoint.json"
FOLDER = "checkpoint"
STATE = "search.json"
VERSION = 1
# Config fields that say where and how a run computes, not what: a run may resume on another
# machine, backend or device (results do not depend on them beyond floating-point noise, which
# is why they are not part of the cache key either). The cache path is pinned by the manifest.
NOT_COMPARED = ("evaluator.cache", "evaluator.backend", "evaluator.ray_address", "evaluator.gpus_per_eval",
                "evaluator.max_retries", "evaluator.threads_per_worker", "runtime", "data.root", "data.download")


class CheckpointError(NasGymError, ValueError):
    """A folder that cannot be resumed, or a command that does not match the run; one line."""


LOCK_FILE = ".lock"


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``run_dir`` while a search writes to it, so two processes
    (say, the same ``--resume`` typed in two terminals) never interleave checkpoints and CSV
    rows. The OS drops the lock when the process dies, so a killed run never blocks its resume.
    POSIX only; elsewhere this is a no-op.

    :raises CheckpointError: another process holds the folder.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    if not run_dir.is_dir():
        raise CheckpointError(f"--resume {run_dir}: no such run folder; give a folder made by nas-gym search")
    with (run_dir / LOCK_FILE).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise CheckpointError(f"run folder {run_dir} is in use by another nas-gym search; wait for it to "
                                  "finish (or stop it) before resuming") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Manifest:
    """What a run folder says about its search.

    :param episodes_done: episodes the agent had run at the last checkpoint (0 before the first).
    :param cache: absolute path of the SQLite cache the run evaluates through, pinned at the
        start so a resumed run reads the same file even if ``NAS_GYM_CACHE`` changed since.
    :param config_hash: :func:`config_hash` of the run's config.
    :param checkpoint: folder of the last checkpoint, relative to the run folder; None when
        there is none (before the first, or for an agent without ``save`` / ``load``).
    """

    agent: str
    preset: str
    seed: int
    episodes: int
    episodes_done: int
    cache: str | None
    config_hash: str
    hparams: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    version: int = VERSION

    @property
    def finished(self) -> bool:
        return self.episodes_done >= self.episodes


def _compared(config: Config) -> dict[str, Any]:
    dump = config.model_dump(mode="json")
    for dotted in NOT_COMPARED:
        section, _, key = dotted.partition(".")
        if key:
            dump.get(section, {}).pop(key, None)
        else:
            dump.pop(section, None)
    return dump


def config_hash(config: Config) -> str:
    """Digest of the config but its :data:`NOT_COMPARED` fields: what decides the run's results."""
    return hashlib.sha256(json.dumps(_compared(config), sort_keys=True).encode()).hexdigest()[:20]


CONFIG_FILE = "config.yaml"
_TYPES = {"agent": str, "preset": str, "seed": int, "episodes": int, "episodes_done": int, "cache": (str, type(None)),
          "config_hash": str, "hparams": dict, "checkpoint": (str, type(None)), "version": int}


def _signed_files(run_dir: Path, manifest: Manifest) -> list[str]:
    """What a resume reads and trusts: the config and every file of the current checkpoint."""
    files = [CONFIG_FILE] if (run_dir / CONFIG_FILE).is_file() else []
    if manifest.checkpoint is not None:
        files += [str(p.relative_to(run_dir)) for p in (run_dir / manifest.checkpoint).rglob("*") if p.is_file()]
    return files


def write_manifest(run_dir: Path, manifest: Manifest) -> None:
    """Replace the manifest atomically, signed over itself and the files it vouches for (``nas_gym.storage.trust``)."""
    body = trust.signed(dataclasses.asdict(manifest), run_dir, _signed_files(run_dir, manifest))
    atomic_write_text(run_dir / MANIFEST, json.dumps(body, indent=1) + "\n")


def verify_run(run_dir: Path, label: str = "--resume") -> None:
    """Refuse a run folder whose manifest, config or checkpoint files this user's nas-gym did not write.

    :raises CheckpointError: not a run folder; TrustError: unsigned or changed, naming the file.
    """
    raw = _raw_manifest(run_dir, label)
    checkpoint = raw.get("checkpoint")
    trust.verify(raw, run_dir, MANIFEST, checkpoint if isinstance(checkpoint, str) else None)


def clean_stale(run_dir: Path) -> None:
    """Remove temporary files an interrupted write left (``.name.PID.tmp``, ``.ep-N.tmp``); called
    with the run lock held, so no live writer owns them."""
    for folder in (run_dir, run_dir / FOLDER):
        if folder.is_dir():
            for path in folder.glob(".*.tmp"):
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def _raw_manifest(run_dir: Path, label: str = "--resume") -> dict[str, Any]:
    if not run_dir.is_dir():
        raise CheckpointError(f"{label} {run_dir}: no such folder; give a run folder that `nas-gym search` created")
    path = run_dir / MANIFEST
    if not path.is_file():
        hint = "" if label == "--resume" else f", or {trust.TRUST_HINT} (its config may name code)"
        raise CheckpointError(f"{label} {run_dir}: not a resumable run folder (no {MANIFEST} vouches for its files); "
                              f"give a run folder that `nas-gym search` created{hint}")
    try:
        raw = json.loads(path.read_bytes().decode())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{label} {run_dir}: {MANIFEST} is unreadable ({type(e).__name__}); "
                              "the run cannot be used") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{label} {run_dir}: {MANIFEST} is not a manifest; the run cannot be used")
    return raw


def read_manifest(run_dir: Path) -> Manifest:
    """The manifest of ``run_dir``.

    :raises CheckpointError: the folder is missing, is not a run folder, or its manifest is unreadable.
    """
    raw = _raw_manifest(run_dir)
    version = raw.get("version", 0)
    if isinstance(version, int) and version > VERSION:
        raise CheckpointError(f"--resume {run_dir}: written by a newer nas-gym (checkpoint version "
                              f"{version}); upgrade nas-gym to resume it")
    raw.pop(trust.SIGNATURE, None)
    raw.pop(trust.FILES, None)
    for key, kind in _TYPES.items():
        if key in raw and (not isinstance(raw[key], kind) or isinstance(raw[key], bool)):
            raise CheckpointError(f"--resume {run_dir}: {MANIFEST} field {key!r} has the wrong type; "
                                  "the run cannot be resumed")
    bad = (raw.get("checkpoint") or "").replace("\\", "/").split("/")
    if ".." in bad or (raw.get("checkpoint") or "").startswith("/"):
        raise CheckpointError(f"--resume {run_dir}: {MANIFEST} names a checkpoint outside the run folder")
    try:
        manifest = Manifest(**raw)
    except TypeError as e:
        raise CheckpointError(f"--resume {run_dir}: {MANIFEST} is unreadable ({e}); the run cannot be resumed") from None
    if min(manifest.seed, manifest.episodes, manifest.episodes_done) < 0:
        raise CheckpointError(f"--resume {run_dir}: {MANIFEST} holds a negative count; the run cannot be resumed")
    return manifest


def check_matches(run_dir: Path, manifest: Manifest, *, agent: str, config: Config, seed: int, episodes: int,
                  hparams: dict[str, Any] | None) -> None:
    """Refuse to resume with a command that differs from the run's: its checkpoint would be
    continued under other rules, and the result would match neither command. More episodes
    than the run's are allowed: they extend it.

    :raises CheckpointError: naming the first difference and how to continue the run as it was.
    """
    hint = f"leave the option out to continue with the run's own (its command is in {run_dir / 'command.txt'})"
    if episodes < manifest.episodes:
        raise CheckpointError(f"--resume {run_dir}: the run used --episodes {manifest.episodes}, this command has "
                              f"--episodes {episodes}; give at least {manifest.episodes} (more extends the run) or {hint}")
    ours = {"agent": manifest.agent, "seed": manifest.seed, "config": manifest.preset}
    given = {"agent": agent, "seed": seed, "config": config.name}
    for key, value in ours.items():
        if given[key] != value:
            raise CheckpointError(f"--resume {run_dir}: the run used --{key} {value}, this command has "
                                  f"--{key} {given[key]}; {hint}")
    if json.dumps(hparams or {}, sort_keys=True) != json.dumps(manifest.hparams, sort_keys=True):
        raise CheckpointError(f"--resume {run_dir}: the run used --hparams {json.dumps(manifest.hparams)}, this command "
                              f"has {json.dumps(hparams or {})}; {hint}")
    if config_hash(config) != manifest.config_hash:
        where = _config_difference(run_dir, config)
        raise CheckpointError(f"--resume {run_dir}: the config differs from the run's{where}; {hint}")


def resume_manifest(run_dir: Path, *, agent: str, config: Config, seed: int, episodes: int,
                    hparams: dict[str, Any] | None) -> Manifest:
    """The manifest to continue ``run_dir`` with, after :func:`check_matches`; with more episodes
    than the run's, the run is extended and its manifest says so at once, so a later ``--resume``
    without ``--episodes`` continues to the new end.

    :raises CheckpointError: the folder is not a run, or the command differs from the run's.
    """
    manifest = read_manifest(run_dir)
    check_matches(run_dir, manifest, agent=agent, config=config, seed=seed, episodes=episodes, hparams=hparams)
    if episodes > manifest.episodes:  # written by the caller once the checkpoint has loaded
        manifest = dataclasses.replace(manifest, episodes=episodes)
    return manifest


def _config_difference(run_dir: Path, config: Config) -> str:
    """`` at train.epochs (run: 1, now: 2)``, read from the run's config.yaml; empty if unknown."""
    import yaml

    try:
        run = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return ""

    def first(a: Any, b: Any, prefix: str) -> str:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if f"{prefix}{key}" not in NOT_COMPARED:
                    found = first(a.get(key), b.get(key), f"{prefix}{key}.")
                    if found:
                        return found
            return ""
        return "" if a == b else f" at {prefix.rstrip('.')} (run: {a}, now: {b})"

    return first(run, config.model_dump(mode="json"), "")


def save(run_dir: Path, manifest: Manifest, agent: BaseAgent, state: dict[str, Any]) -> Manifest:
    """Checkpoint ``agent`` and ``state`` after ``manifest.episodes_done`` episodes; returns the
    manifest naming the new checkpoint folder.

    A non-resumable agent (``BaseAgent.resumable`` False) gets no checkpoint: its manifest only records the end of
    the run, and a resume restarts it from episode 0 (its evaluations then come from the cache).

    The caller flushes the recorder first, so the CSV on disk is never behind a checkpoint.
    """
    if not agent.resumable:
        if manifest.finished:
            write_manifest(run_dir, dataclasses.replace(manifest, checkpoint=None))
        return manifest
    root = run_dir / FOLDER
    root.mkdir(exist_ok=True)
    name = f"ep-{manifest.episodes_done:06d}"
    tmp, final = root / f".{name}.tmp", root / name
    shutil.rmtree(tmp, ignore_errors=True)  # left by a crash mid-save
    tmp.mkdir()
    agent.save(tmp / "agent")
    (tmp / STATE).write_text(json.dumps(state))
    for path in tmp.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())
    fsync_dir(tmp)
    shutil.rmtree(final, ignore_errors=True)  # written by a run killed before its manifest pointed here
    os.replace(tmp, final)
    fsync_dir(root)
    manifest = dataclasses.replace(manifest, checkpoint=f"{FOLDER}/{name}")
    write_manifest(run_dir, manifest)
    for old in root.iterdir():  # only now is the previous checkpoint no longer needed
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return manifest


def read_state(run_dir: Path, manifest: Manifest) -> dict[str, Any]:
    """The search state saved with the manifest's checkpoint (the recorder's counters, the evaluator's state);
    ``{}`` when there is no checkpoint yet, which means: start over from episode 0.

    :raises CheckpointError: the checkpoint the manifest names is missing or unreadable.
    """
    if manifest.checkpoint is None:
        return {}
    path = run_dir / manifest.checkpoint / STATE
    try:
        state = json.loads(path.read_bytes().decode())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"--resume {run_dir}: {path} cannot be read ({type(e).__name__}); "
                              "the run cannot be resumed") from None
    if not isinstance(state, dict) or not all(isinstance(state.get(k, {}), dict) for k in ("log", "stats", "evaluator")):
        raise CheckpointError(f"--resume {run_dir}: {path} is not a search state (wrong types); "
                              "the run cannot be resumed")
    return state


def load_agent(run_dir: Path, manifest: Manifest, agent: BaseAgent) -> None:
    """Restore ``agent`` from the manifest's checkpoint (a no-op when there is none).

    :raises CheckpointError: the agent cannot load it.
    """
    if manifest.checkpoint is None:
        return
    if not agent.resumable:
        raise CheckpointError(f"--resume {run_dir}: agent {manifest.agent} has no load(); it cannot continue a checkpoint")
    try:
        agent.load(run_dir / manifest.checkpoint / "agent")
    except Exception as e:  # any damage inside the agent's own files: one line, not a traceback
        detail = " ".join(str(e).split())[:200]
        raise CheckpointError(f"--resume {run_dir}: checkpoint {manifest.checkpoint} cannot be loaded "
                              f"({type(e).__name__}: {detail}); the run cannot be resumed") from None

