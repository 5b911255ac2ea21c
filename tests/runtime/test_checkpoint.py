"""Atomic checkpoints: round trip, no partial files, refusing another model's checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from streammeta.runtime.checkpoint import CheckpointError, CheckpointStore


def test_round_trip_and_overwrite(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, fingerprint={"hidden": [40, 40]})
    assert store.load() is None
    store.save({"w": torch.arange(3.0), "records": 1}, {("t", 0): 5, ("t", 1): 7})
    store.save({"w": torch.arange(4.0), "records": 2}, {("t", 0): 9})
    state, offsets = store.load()  # type: ignore[misc]
    assert torch.equal(state["w"], torch.arange(4.0)) and state["records"] == 2
    assert offsets == {("t", 0): 9}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp file left


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save({"records": 1}, {("t", 0): 1})
    with pytest.raises(Exception, match="pickle"):
        store.save({"records": lambda: 2}, {("t", 0): 2})
    assert store.load() == ({"records": 1}, {("t", 0): 1})
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_another_models_checkpoint_or_a_broken_file_stops_with_the_fix(tmp_path: Path) -> None:
    CheckpointStore(tmp_path, fingerprint={"hidden": [40, 40]}).save({}, {})
    with pytest.raises(CheckpointError, match=r"\[64\].*another checkpoint directory"):
        CheckpointStore(tmp_path, fingerprint={"hidden": [64]}).load()
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="move it away"):
        CheckpointStore(tmp_path).load()
