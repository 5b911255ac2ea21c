"""Encoding predictions as strict-JSON Kafka messages (no broker needed)."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from streammeta.io import Decoder, RawMessage, Records
from streammeta.io.encode import encode_predictions
from streammeta.io.labels import Labels


def decoded(*values: bytes, n_classes: int = 0, labels: tuple[str, ...] = ()) -> Records:
    """The records of ``values``, one message each on ``in``/partition ``2 + offset``."""
    messages = [RawMessage("in", 2 + i, 10 + i, None, v, (), 0) for i, v in enumerate(values)]
    out = Decoder(n_features=1, n_classes=n_classes, labels=labels).decode(messages)
    assert out.dead == []
    return out.records


NO_NAMES = Labels()


def encode(
    records: Records, labels: Labels = NO_NAMES, **given: Any
) -> list[tuple[bytes, dict[str, Any]]]:
    """The (key, parsed value) pairs of ``records``' predictions; columns not ``given`` hold
    0.0 predictions, NaN losses, task 0, no boundary, model version 0. Parsing is strict: a
    NaN or Infinity token fails the test."""

    def refuse(token: str) -> None:
        raise AssertionError(f"non-strict JSON token {token}")

    n = len(records)
    columns: dict[str, Any] = {
        "y_hat": np.zeros(n),
        "proba": None,
        "loss": np.full(n, np.nan),
        "task": np.zeros(n, dtype=np.int64),
        "boundary": np.zeros(n, dtype=bool),
        "model_version": 0,
    }
    out = encode_predictions(records, SimpleNamespace(**{**columns, **given}), labels)
    return [(key, json.loads(value, parse_constant=refuse)) for key, value in out]


def test_fields_keys_and_order_are_as_the_design_says() -> None:
    records = decoded(b'{"x": [1], "y": 2.5, "key": "t\xc3\xbc"}', b'{"x": [2], "id": "r-9"}')
    (key1, first), (key2, second) = encode(
        records,
        y_hat=np.array([2.0, 3.0], dtype=np.float32),
        loss=np.array([0.25, np.nan]),
        task=np.array([4, 5]),
        boundary=np.array([True, False]),
        model_version=7,
    )
    assert (key1, key2) == ("tü".encode(), b"in:3")  # the record's key, else its partition
    assert first == {
        "id": "in:2:10",
        "key": "tü",
        "task": 4,
        "y_hat": 2.0,
        "boundary": True,
        "model_version": 7,
        "topic": "in",
        "partition": 2,
        "offset": 10,
        "y": 2.5,
        "loss": 0.25,
    }
    assert list(first) == ["id", "key", "task", "y_hat", "boundary", "model_version", "topic",
                           "partition", "offset", "y", "loss"]  # fmt: skip
    assert second == {
        "id": "r-9",
        "key": None,
        "task": 5,
        "y_hat": 3.0,
        "boundary": False,
        "model_version": 7,
        "topic": "in",
        "partition": 3,
        "offset": 11,
    }  # unlabelled: no y, no loss


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_floats_are_null_never_nan_tokens(bad: float) -> None:
    records = decoded(b'{"x": [1], "y": 1}', b'{"x": [2], "y": 0}', n_classes=2)
    (_, first), (_, second) = encode(
        records,
        y_hat=np.array([1, 0]),
        proba=np.array([[bad, 0.5], [0.1234567891, 0.8765432109]]),
        loss=np.array([bad, 0.5]),
    )
    assert first["proba"] == [None, 0.5] and first["loss"] is None and first["y"] == 1
    assert second["proba"] == [0.123457, 0.876543] and second["loss"] == 0.5  # 6 decimals


def test_a_non_finite_regression_prediction_and_target_are_null() -> None:
    records = replace(decoded(b'{"x": [1], "y": 1}'), y=np.array([np.inf], dtype=np.float32))
    [(_, value)] = encode(
        records, y_hat=np.array([np.nan], dtype=np.float32), loss=np.array([np.inf])
    )
    assert (value["y_hat"], value["y"], value["loss"]) == (None, None, None)


def test_labels_name_the_classes_of_y_and_y_hat() -> None:
    labels = ("cat", "dog", "eel")
    records = decoded(
        b'{"x": [1], "y": "eel"}', b'{"x": [2]}', b'{"x": [3], "y": 0}', n_classes=3, labels=labels
    )
    third = np.full((3, 3), 1 / 3, dtype=np.float32)  # the learner's dtype: 6 decimals, no noise
    out = encode(records, Labels(3, labels), y_hat=np.array([1, 2, 0]), proba=third)
    assert [(v["y_hat"], v.get("y")) for _, v in out] == [
        ("dog", "eel"),
        ("eel", None),
        ("cat", "cat"),
    ]
    assert out[0][1]["proba"] == [0.333333] * 3
    assert [key for key, _ in out] == [b"in:2", b"in:3", b"in:4"]


def test_a_key_that_is_not_utf8_still_encodes() -> None:
    records = replace(decoded(b'{"x": [1]}'), key=np.array(["a\ud800"], dtype=object))
    [(key, value)] = encode(records)  # past the decoder, which refuses such keys
    assert key == b"a\\ud800" and value["key"] == "a\ud800"


def test_no_records_no_messages() -> None:
    assert encode(Decoder(n_features=1).decode([]).records) == []
