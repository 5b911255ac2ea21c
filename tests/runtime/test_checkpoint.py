"""Atomic checkpoints: round trip, no partial files, refusing another model's checkpoint, a
file of another shape, a corrupt file, and a directory that cannot be made."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest
import torch

from streammeta.runtime.checkpoint import CheckpointError, CheckpointStore, read_checkpoint


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
    with pytest.raises(CheckpointError, match="move it away") as info:
        CheckpointStore(tmp_path).load()
    assert "weights_only" not in str(info.value)


def _store_with(tmp_path: Path, payload: object) -> CheckpointStore:
    """A store whose file is ``payload`` as plain ``torch.save`` writes it (the first format)."""
    torch.save(payload, tmp_path / "checkpoint.pt")
    return CheckpointStore(tmp_path, fingerprint="f")


def test_a_first_format_checkpoint_without_a_checksum_still_loads(tmp_path: Path) -> None:
    payload = {"state": {"records": 4}, "offsets": [["t", 0, 9]], "fingerprint": "f"}
    assert _store_with(tmp_path, payload).load() == ({"records": 4}, {("t", 0): 9})
    assert read_checkpoint(tmp_path / "checkpoint.pt") == ({"records": 4}, {("t", 0): 9}, "f")


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"a": 1}, "it lacks 'state', 'offsets', 'fingerprint'"),
        ([1, 2], "it holds a list, not a checkpoint's dict"),
        ({"state": {}, "offsets": []}, "it lacks 'fingerprint'"),
        ({"state": [], "offsets": [], "fingerprint": "f"}, "its 'state' is a list"),
        ({"state": {}, "offsets": "t:0:1", "fingerprint": "f"}, "its 'offsets' are not"),
        ({"state": {}, "offsets": [["t", "0", 1]], "fingerprint": "f"}, "its 'offsets' are not"),
        ({"state": {}, "offsets": [["t", 0]], "fingerprint": "f"}, "its 'offsets' are not"),
        ({"state": {}, "offsets": [["t", 0, -1]], "fingerprint": "f"}, "its 'offsets' are not"),
        ({"state": {}, "offsets": {("t", 0): 1}, "fingerprint": "f"}, "its 'offsets' are not"),
    ],
)
def test_a_torch_file_of_another_shape_is_refused_with_the_fix(
    tmp_path: Path, payload: object, why: str
) -> None:
    with pytest.raises(CheckpointError) as info:
        _store_with(tmp_path, payload).load()
    message = str(info.value)
    assert message.startswith(f"checkpoint {tmp_path / 'checkpoint.pt'} cannot be used: {why}")
    assert message.endswith("; move it away to start fresh")


def test_a_file_torch_refuses_is_described_without_torchs_weights_only_hint(
    tmp_path: Path,
) -> None:
    store = _store_with(tmp_path, {"state": {"p": PurePosixPath("x")}})  # a pickled object
    with pytest.raises(CheckpointError, match="move it away to start fresh") as info:
        store.load()
    message = str(info.value)
    assert "weights_only" not in message and "\n" not in message
    assert "UnpicklingError" in message and "holds more than tensors" in message


def test_a_flipped_byte_or_a_truncation_is_a_checksum_mismatch(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, fingerprint="f")
    path = store.save({"w": torch.zeros(1000)}, {("t", 0): 5})
    good = path.read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    for damaged in (bytes(flipped), good[: len(good) - 100]):
        path.write_bytes(damaged)
        with pytest.raises(CheckpointError) as info:
            store.load()
        assert str(info.value).startswith(f"checkpoint {path} cannot be used: checksum mismatch")
        assert str(info.value).endswith("move it away to start fresh")
    path.write_bytes(good)
    assert store.load() is not None


def test_read_checkpoint_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"nope\.pt cannot be used: FileNotFoundError"):
        read_checkpoint(tmp_path / "nope.pt")


def test_a_checkpoint_directory_under_a_file_is_refused_naming_the_setting(
    tmp_path: Path,
) -> None:
    (tmp_path / "file").write_text("x")
    for directory, hint in (
        (tmp_path / "file" / "ckpt", "a part of the path is a file"),
        (tmp_path / "file", "a file of that name is in the way"),
    ):
        with pytest.raises(CheckpointError) as info:
            CheckpointStore(directory)
        message = str(info.value)
        assert message.startswith(f"service.checkpoint_dir = '{directory}': cannot create")
        assert hint in message and "--checkpoint-dir DIR" in message


def test_a_checkpoint_directory_without_permission_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    with monkeypatch.context() as patch:  # tests may run as root, whom chmod does not stop
        patch.setattr(Path, "mkdir", denied)
        with pytest.raises(CheckpointError, match=r"cannot create the directory \(Permission"):
            CheckpointStore(tmp_path / "new")
    monkeypatch.setattr(os, "access", lambda *_: False)
    with pytest.raises(
        CheckpointError, match=r"checkpoint_dir = '.*': the directory is not writable.*fix its"
    ):
        CheckpointStore(tmp_path)
