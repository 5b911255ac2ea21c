"""Labels as plain rows (checkpointed without pickle) and back, and their dead letters: the
helpers of :class:`~streammeta.runtime.labels.LabelJoin`.

>>> import numpy as np
>>> from streammeta.io.base import RawMessage
>>> from streammeta.io.decode import Decoder
>>> msg = RawMessage("labels", 0, 4, b"k", b'{"id": "a", "y": 1}', (), 0)
>>> labels = Decoder(n_features=1, n_classes=2).decode([msg]).records
>>> row = as_row(labels, 0, [msg])
>>> row["id"], row["y"], row["value"], letter(row, "unmatched_label").offset
('a', 1, b'{"id": "a", "y": 1}', 4)
>>> as_records([row], dtypes_of(labels), labels).y.tolist()
[1]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from streammeta.io.base import RawMessage
from streammeta.io.records import DeadLetter, Records, default_ids

__all__ = ["as_records", "as_row", "completed", "dtypes_of", "given_ids", "letter", "why"]


def why(reason: str) -> LookupError:
    """The error a rejected label's dead letter carries."""
    if reason == "duplicate_label":
        return LookupError("a label for this id was joined already: one label per record")
    return LookupError(
        "no record waits for this id: unknown, or it waited longer than service.label_window "
        "records or service.label_window_seconds (produce the label with the record's message "
        "key, so that both reach the same consumer)"
    )


def as_row(labels: Records, i: int, messages: Sequence[RawMessage]) -> dict[str, Any]:
    """Label ``i`` in plain values, with the message that carried it (``None`` when not in
    ``messages``) for its dead letter."""
    row = {f.name: getattr(labels, f.name)[i] for f in dataclasses.fields(labels)}
    row = {k: v.tolist() if isinstance(v, np.ndarray | np.generic) else v for k, v in row.items()}
    where = (str(labels.topic[i]), int(labels.partition[i]), int(labels.offset[i]))
    m = next((m for m in messages if (m.topic, m.partition, m.offset) == where), None)
    return row | {"value": None if m is None else m.value, "message_key": m and m.key}


def given_ids(r: Records) -> np.ndarray:
    """Whether each record carried an ``id`` of its own (not the default
    ``topic:partition:offset[:index]`` the decoder fills in)."""
    default = default_ids(r.topic.tolist(), r.partition.tolist(), r.offset.tolist(),
                          r.index.tolist())  # fmt: skip
    return np.array([v != d for v, d in zip(r.id.tolist(), default, strict=True)], dtype=bool)


def dtypes_of(labels: Records) -> dict[str, str]:
    return {f.name: str(getattr(labels, f.name).dtype) for f in dataclasses.fields(labels)}


def as_records(rows: list[dict[str, Any]], dtypes: dict[str, str], like: Records) -> Records:
    """Rows back as label records (the columns of ``like``'s fields)."""
    columns = {}
    for f in dataclasses.fields(like):
        values, dtype = [row[f.name] for row in rows], dtypes[f.name]
        if dtype == "object":  # a None at the end keeps a list value from becoming an axis
            columns[f.name] = np.array([*values, None], dtype=object)[:-1]
        else:
            columns[f.name] = np.array(values, dtype=dtype)
    return Records(**columns)


def letter(row: dict[str, Any], reason: str, exc: Exception | None = None) -> DeadLetter:
    """The dead letter of a label row: its message, the reason (and ``exc``, else the reason's
    own explanation) and its source position."""
    exc = why(reason) if exc is None else exc
    index = int(row["index"])
    return DeadLetter(
        row["value"], row["message_key"], reason, type(exc).__name__, str(exc),
        str(row["topic"]), int(row["partition"]), int(row["offset"]),
        index if index >= 0 else None,
    )  # fmt: skip


def completed(labels: Records, rows: list[dict[str, Any]]) -> Records:
    """``labels`` with the features, key, task and concept of their records (``rows``)."""
    if not rows:
        return labels
    objects = {
        k: np.array([row[k] for row in rows] + [None], dtype=object)[:-1]
        for k in ("key", "task", "concept")
    }
    return dataclasses.replace(
        labels,
        x=np.array([row["x"] for row in rows], dtype=labels.x.dtype),
        ts=np.array([row["ts"] for row in rows], dtype=np.float64),
        label_only=np.zeros(len(rows), dtype=bool),
        **objects,
    )
