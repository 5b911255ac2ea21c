"""Predictions -> Kafka messages: one strict-JSON object per record, keyed to keep order.

Each value carries ``id``, ``key``, ``task`` (segment id), ``y_hat``, ``boundary``,
``model_version`` and the source ``topic``, ``partition`` and ``offset``; ``proba`` (rounded to 6
decimals) for classification; ``y`` and ``loss`` when the record was labelled. With ``labels``,
``y`` and ``y_hat`` are class names. The JSON is strict: a float that is not finite is ``null``,
never ``NaN`` or ``Infinity``. The message key is the record's ``key``, else
``topic:partition`` of the input, so that each input partition keeps its order in the output.

>>> from streammeta.io.base import RawMessage
>>> from streammeta.io.decode import Decoder
>>> msgs = [RawMessage("in", 3, 5, None, b'[{"x": [1], "y": 2}, {"x": [2], "key": "k"}]', (), 0)]
>>> records = Decoder(n_features=1).decode(msgs).records
>>> out = encode_predictions(
...     records,
...     y_hat=np.array([1.5, np.nan]),
...     proba=None,
...     loss=np.array([0.25, np.nan]),
...     task=np.array([0, 0]),
...     boundary=np.array([False, False]),
...     model_version=4,
... )
>>> for key, value in out:
...     print(key, value.decode())
b'in:3' {"id":"in:3:5:0","key":null,"task":0,"y_hat":1.5,"boundary":false,"model_version":4,\
"topic":"in","partition":3,"offset":5,"y":2.0,"loss":0.25}
b'k' {"id":"in:3:5:1","key":"k","task":0,"y_hat":null,"boundary":false,"model_version":4,\
"topic":"in","partition":3,"offset":5}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from streammeta.io.records import Records

__all__ = ["encode_predictions"]

#: One compact strict encoder for every prediction (``json.dumps`` with options builds a new
#: encoder per call); ``allow_nan=False`` makes a non-finite float that slipped through an error.
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def encode_predictions(
    records: Records,
    *,
    y_hat: np.ndarray,
    proba: np.ndarray | None,
    loss: np.ndarray,
    task: np.ndarray,
    boundary: np.ndarray,
    model_version: int,
    labels: Sequence[str] = (),
) -> list[tuple[bytes, bytes]]:
    """``(message key, value)`` of the prediction of each of ``records``, in order.

    ``y_hat``, ``loss`` (NaN where unlabelled), ``task`` and ``boundary`` hold one value per
    record, ``proba`` one row of class probabilities per record (classification) or is
    ``None``; ``labels`` names the classes (``y`` and ``y_hat`` are then names, not indices).
    """
    names = np.asarray(labels, dtype=object) if labels else None
    labelled = records.labelled.tolist()
    ys = _json(np.where(records.labelled, records.y, 0), names)  # 0: unlabelled, never sent
    y_hats = _json(y_hat, names)
    losses = _json(loss)
    probas = None if proba is None else _json(proba.astype(np.float64).round(6))
    ids, keys, tasks = records.id.tolist(), records.key.tolist(), task.tolist()
    topics, parts, offsets = (
        records.topic.tolist(),
        records.partition.tolist(),
        records.offset.tolist(),
    )
    flags = boundary.tolist()
    version = int(model_version)
    out: list[tuple[bytes, bytes]] = []
    for i, key in enumerate(keys):
        value: dict[str, Any] = {
            "id": ids[i],
            "key": key,
            "task": tasks[i],
            "y_hat": y_hats[i],
            "boundary": flags[i],
            "model_version": version,
            "topic": topics[i],
            "partition": parts[i],
            "offset": offsets[i],
        }
        if probas is not None:
            value["proba"] = probas[i]
        if labelled[i]:
            value["y"] = ys[i]
            value["loss"] = losses[i]
        route = key if key is not None else f"{topics[i]}:{parts[i]}"
        out.append((route.encode("utf-8", "backslashreplace"), _ENCODE(value).encode()))
    return out


def _json(values: np.ndarray, names: np.ndarray | None = None) -> list[Any]:
    """``values`` as JSON-ready Python values (nested lists for a matrix): the class names they
    index when ``names`` are given, and ``None`` (null) for each float that is not finite."""
    if names is not None:
        return names[values.astype(np.int64)].tolist()
    if values.dtype.kind != "f":
        return values.tolist()
    bad = ~np.isfinite(values)
    if not bad.any():
        return values.tolist()
    nulled = values.astype(object)
    nulled[bad] = None
    return nulled.tolist()
