"""Signed run folders: a resumed run executes only what this user's nas-gym wrote.

Resuming a run loads its agent's files (an SB3 archive, a replay buffer, random states) and
its ``config.yaml``, and a config may name code (``space.kind: file.py:Class``, an agent given
as ``module:Class``). A run folder someone else could write to (a shared disk, a downloaded
archive, a folder of another user) would then run their code under this user's name. So every
file a resume reads is signed when it is written, and ``--resume`` / ``retrain RUN_DIR``
refuse a folder whose files are unsigned or changed since, unless the user says they trust it.

How: a random 32-byte key is created once per user (``$NAS_GYM_KEY``, else
``$XDG_CONFIG_HOME/nas-gym/signing.key`` or ``~/.config/nas-gym/signing.key``; mode 0600,
under config rather than the cache folder, because deleting caches must not orphan runs). The
run's manifest, ``checkpoint.json``, lists the SHA-256 of ``config.yaml`` and of every file of
its checkpoint folder, and carries an HMAC-SHA256 of itself under that key. One signature in
the manifest, rather than one file of signatures, keeps the manifest the single atomic commit
point of a checkpoint: a crash between writing a checkpoint and signing it cannot happen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from nas_gym.errors import NasGymError

KEY_ENV = "NAS_GYM_KEY"
SIGNATURE = "signature"
FILES = "files"
TRUST_HINT = "if you trust the folder's author, add --trust-run-folder"


class TrustError(NasGymError, ValueError):
    """A run folder whose files were not written, or were changed since, by this user's nas-gym; one line."""


def key_path() -> Path:
    """Where this user's signing key lives (see the module docstring)."""
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or "~/.config").expanduser()
    return base / "nas-gym" / "signing.key"


def signing_key() -> bytes:
    """The key, created on first use; two processes creating it at once agree on one
    (the file is linked into place only if absent)."""
    path = key_path()
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, secrets.token_hex(32).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process got there first: then its key is the key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    if os.name == "posix" and path.stat().st_mode & 0o077:  # others could read it and sign folders as this user
        raise TrustError(f"signing key {path} is readable or writable by other users; make it private with "
                         f"chmod 600 {path}")
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise TrustError(f"signing key {path} is damaged; delete it (run folders signed with it will then "
                         f"need --trust-run-folder) or point {KEY_ENV} at another file")
    return key


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _mac(body: dict[str, Any]) -> str:
    payload = json.dumps({k: v for k, v in body.items() if k != SIGNATURE}, sort_keys=True, separators=(",", ":"))
    return hmac.new(signing_key(), payload.encode(), hashlib.sha256).hexdigest()


def signed(body: dict[str, Any], run_dir: Path, files: list[str]) -> dict[str, Any]:
    """``body`` with the digests of ``files`` (paths relative to ``run_dir``) and its HMAC."""
    out = {**body, FILES: {name: file_digest(run_dir / name) for name in sorted(files)}}
    out[SIGNATURE] = _mac(out)
    return out


def verify(raw: dict[str, Any], run_dir: Path, manifest_name: str, folder: str | None) -> None:
    """Check the manifest ``raw`` read from ``run_dir``: its HMAC, each listed file's digest,
    and that ``folder`` (the checkpoint folder it names) holds no file it does not list.

    :raises TrustError: one line naming the first file that fails and the way out.
    """
    where = run_dir / manifest_name
    if SIGNATURE not in raw:
        raise TrustError(f"{where} is not signed (written by a nas-gym before signing, or not by nas-gym); "
                         f"resuming would load files that may run code; {TRUST_HINT}")
    if not isinstance(raw.get(FILES), dict) or not hmac.compare_digest(str(raw[SIGNATURE]), _mac(raw)):
        raise TrustError(f"{where}: its signature does not match (changed since it was written, or signed by "
                         f"another user's or machine's key); {TRUST_HINT}")
    for name, digest in raw[FILES].items():
        path = run_dir / name
        if not path.is_file():
            raise TrustError(f"{path}: listed in the signed manifest but missing; the run folder is incomplete")
        if file_digest(path) != digest:
            raise TrustError(f"{path}: changed since nas-gym wrote it (its digest differs from the signed one); "
                             f"{TRUST_HINT}")
    if folder is not None and (run_dir / folder).is_dir():
        for path in sorted((run_dir / folder).rglob("*")):
            if path.is_file() and str(path.relative_to(run_dir)) not in raw[FILES]:
                raise TrustError(f"{path}: not written by nas-gym (absent from the signed manifest); remove it, or "
                                 f"{TRUST_HINT}")
