"""Atomic, checksummed checkpoints: the pipeline's state with the next input offset of every
partition it covers, written so that a crash at any instant leaves either the old checkpoint or
the new one, and a file changed since (a flipped bit, a truncation) is refused, never restored.

The file is one header line, ``streammeta-checkpoint 2 sha256=<hex digest of the rest>``, then
the payload as ``torch.save`` writes it. It is written to a temporary file in the same directory,
flushed and fsynced, renamed over the old one, and the directory fsynced. Loading checks the
digest, then uses ``torch.load(weights_only=True)``: tensors, numbers, strings and containers
only, never pickled objects. Files of the first format (the bare ``torch.save`` payload, no
digest) still load. :func:`read_checkpoint` reads a file without a store (tools, tests).

>>> import tempfile
>>> store = CheckpointStore(tempfile.mkdtemp(), fingerprint={"hidden": [40, 40]})
>>> _ = store.save({"records": 3}, {("in", 0): 42})
>>> store.load()
({'records': 3}, {('in', 0): 42})
>>> read_checkpoint(store.path)
({'records': 3}, {('in', 0): 42}, {'hidden': [40, 40]})
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from streammeta.errors import StreamMetaError

__all__ = ["CheckpointError", "CheckpointStore", "Offsets", "read_checkpoint"]

Offsets = dict[tuple[str, int], int]  # (topic, partition) -> next offset to read

_MAGIC = b"streammeta-checkpoint 2 sha256="
_FRESH = "move it away to start fresh"
#: Why a checkpoint directory cannot be created, by the error ``mkdir`` raises.
_DIR_HINTS: dict[type[OSError], str] = {
    FileExistsError: "a file of that name is in the way",
    NotADirectoryError: "a part of the path is a file, not a directory",
}
_DIR_FIX = (
    "choose a directory this user can write (--checkpoint-dir DIR, "
    "STREAMMETA_SERVICE__CHECKPOINT_DIR or checkpoint_dir in the [service] table)"
)


class CheckpointError(StreamMetaError, RuntimeError):
    """A checkpoint that cannot be used (another model's, unreadable, corrupt), or a checkpoint
    directory that cannot be created."""


def _header(blob: bytes) -> bytes:
    return _MAGIC + hashlib.sha256(blob).hexdigest().encode() + b"\n"


def _unwrap(data: bytes) -> bytes:
    """The payload bytes of a checkpoint file's ``data``, its digest checked (first-format files
    have none: returned as they are); raises ``ValueError`` saying what is wrong."""
    if not data.startswith(_MAGIC):
        return data
    line, _, blob = data.partition(b"\n")
    stored = line.removeprefix(_MAGIC).decode("ascii", "replace")
    if hashlib.sha256(blob).hexdigest() != stored:
        raise ValueError(
            "checksum mismatch: the file changed after it was written (a disk or copy fault, "
            "or a truncated file)"
        )
    return blob


def _torch_load(blob: bytes) -> Any:
    """``torch.load`` of ``blob`` (weights only); its failures as ``ValueError`` in our words,
    never torch's advice to load untrusted files with ``weights_only=False``."""
    try:
        return torch.load(io.BytesIO(blob), weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not its format
        text = str(exc).strip()
        detail = text.splitlines()[0][:160].rstrip(".") if text else ""
        if "weights_only" in text or not detail:
            detail = "damaged, or holds more than tensors, numbers, strings and containers"
        raise ValueError(
            f"not a checkpoint torch can read ({type(exc).__name__}: {detail})"
        ) from exc


def _parse(payload: Any) -> tuple[dict[str, Any], Offsets, Any]:
    """``(state, offsets, fingerprint)`` from a loaded payload; ``ValueError`` when its shape is
    not a checkpoint's."""
    if not isinstance(payload, dict):
        raise ValueError(f"it holds a {type(payload).__name__}, not a checkpoint's dict")
    missing = [k for k in ("state", "offsets", "fingerprint") if k not in payload]
    if missing:
        raise ValueError(f"it lacks {', '.join(map(repr, missing))}")
    state, rows = payload["state"], payload["offsets"]
    if not isinstance(state, dict):
        raise ValueError(f"its 'state' is a {type(state).__name__}, not a dict")
    if not isinstance(rows, list | tuple) or not all(_offset_row(row) for row in rows):
        raise ValueError("its 'offsets' are not a list of [topic, partition, next offset]")
    offsets = {(topic, part): off for topic, part, off in rows}
    return state, offsets, payload["fingerprint"]


def _offset_row(row: object) -> bool:
    """Whether ``row`` is ``[topic, partition, next offset]``: a string and two ints >= 0."""
    if not isinstance(row, list | tuple) or len(row) != 3:
        return False
    topic, part, off = row
    ints = all(type(v) is int and v >= 0 for v in (part, off))
    return isinstance(topic, str) and ints


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Offsets, Any]:
    """``(state, offsets, fingerprint)`` of the checkpoint file at ``path``, its checksum
    checked. Raises :class:`CheckpointError` naming the file, what is wrong and the fix."""
    path = Path(path)
    try:
        return _parse(_torch_load(_unwrap(path.read_bytes())))
    except OSError as exc:
        why = f"{type(exc).__name__}: {exc.strerror or exc}"
    except ValueError as exc:
        why = str(exc)
    raise CheckpointError(f"checkpoint {path} cannot be used: {why}; {_FRESH}")


class CheckpointStore:
    """One checkpoint file in ``directory`` (created when missing: a directory that cannot be,
    raises :class:`CheckpointError`). ``fingerprint`` (e.g. the learner config) is saved with
    it; loading a checkpoint saved under another fingerprint stops with both shown."""

    name = "checkpoint.pt"

    def __init__(self, directory: str | os.PathLike[str], fingerprint: Any = None) -> None:
        self.directory = Path(directory)
        self.fingerprint = fingerprint
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            hint = _DIR_HINTS.get(type(exc), "")
            raise CheckpointError(
                f"service.checkpoint_dir = {str(directory)!r}: cannot create the directory "
                f"({exc.strerror or type(exc).__name__}{': ' + hint if hint else ''}); {_DIR_FIX}"
            ) from exc
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise CheckpointError(
                f"service.checkpoint_dir = {str(directory)!r}: the directory is not writable "
                f"(Permission denied); {_DIR_FIX}, or fix its permissions"
            )

    @property
    def path(self) -> Path:
        return self.directory / self.name

    def save(self, state: dict[str, Any], offsets: Offsets) -> Path:
        """Write ``state`` and ``offsets`` atomically with a checksum; return the path."""
        payload = {
            "state": state,
            "offsets": [[topic, part, off] for (topic, part), off in sorted(offsets.items())],
            "fingerprint": self.fingerprint,
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        blob = buffer.getvalue()
        fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_header(blob))
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return self.path

    def load(self) -> tuple[dict[str, Any], Offsets] | None:
        """The last checkpoint's state and offsets; ``None`` when there is none yet."""
        if not self.path.exists():
            return None
        state, offsets, fingerprint = read_checkpoint(self.path)
        if fingerprint != self.fingerprint:
            raise CheckpointError(
                f"checkpoint {self.path} was written for {fingerprint!r}, the config "
                f"now says {self.fingerprint!r}; restore that config or use another "
                "checkpoint directory"
            )
        return state, offsets
