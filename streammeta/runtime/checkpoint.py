"""Atomic checkpoints: the pipeline's state with the next input offset of every partition it
covers, written so that a crash at any instant leaves either the old checkpoint or the new one.

Write to a temporary file in the same directory, flush and fsync it, rename it over the old
one, fsync the directory. Loading uses ``torch.load(weights_only=True)``: tensors, numbers,
strings and containers only, never pickled objects.

>>> import tempfile
>>> store = CheckpointStore(tempfile.mkdtemp(), fingerprint={"hidden": [40, 40]})
>>> _ = store.save({"records": 3}, {("in", 0): 42})
>>> store.load()
({'records': 3}, {('in', 0): 42})
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from streammeta.errors import StreamMetaError

__all__ = ["CheckpointError", "CheckpointStore", "Offsets"]

Offsets = dict[tuple[str, int], int]  # (topic, partition) -> next offset to read


class CheckpointError(StreamMetaError, RuntimeError):
    """A checkpoint that cannot be used (another model's, or unreadable)."""


class CheckpointStore:
    """One checkpoint file in ``directory``. ``fingerprint`` (e.g. the learner config) is saved
    with it; loading a checkpoint saved under another fingerprint stops with both shown."""

    name = "checkpoint.pt"

    def __init__(self, directory: str | os.PathLike[str], fingerprint: Any = None) -> None:
        self.directory = Path(directory)
        self.fingerprint = fingerprint
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Path:
        return self.directory / self.name

    def save(self, state: dict[str, Any], offsets: Offsets) -> Path:
        """Write ``state`` and ``offsets`` atomically; return the checkpoint's path."""
        payload = {
            "state": state,
            "offsets": [[topic, part, off] for (topic, part), off in sorted(offsets.items())],
            "fingerprint": self.fingerprint,
        }
        fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(payload, fh)
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
        try:
            payload = torch.load(self.path, weights_only=True)
        except Exception as exc:  # a truncated or foreign file: say which and what to do
            raise CheckpointError(
                f"checkpoint {self.path} cannot be read ({type(exc).__name__}: {exc}); "
                "move it away to start fresh"
            ) from exc
        if payload["fingerprint"] != self.fingerprint:
            raise CheckpointError(
                f"checkpoint {self.path} was written for {payload['fingerprint']!r}, the config "
                f"now says {self.fingerprint!r}; restore that config or use another "
                "checkpoint directory"
            )
        offsets = {(topic, int(part)): int(off) for topic, part, off in payload["offsets"]}
        return payload["state"], offsets
