"""Predictions -> Kafka messages: one strict-JSON object per record, keyed to keep order.

Each value carries ``id``, ``key``, ``task`` (segment id), ``y_hat``, ``boundary``,
``model_version`` and the source ``topic``, ``partition`` and ``offset``; ``proba`` (rounded to 6
decimals) for classification; ``y`` and ``loss`` when the record was labelled. With class names
configured (:class:`~streammeta.io.labels.Labels`, the decoder's), ``y`` and ``y_hat`` are
names. The JSON is strict: a float that is not finite is ``null``, never ``NaN`` or
``Infinity``. The message key is the record's ``key``, else ``topic:partition`` of the input, so
that each input partition keeps its order in the output.

>>> from types import SimpleNamespace
>>> from streammeta.io.base import RawMessage
>>> from streammeta.io.decode import Decoder
>>> msgs = [RawMessage("in", 3, 5, None, b'[{"x": [1], "y": 2}, {"x": [2], "key": "k"}]', (), 0)]
>>> decoder = Decoder(n_features=1)
>>> step = SimpleNamespace(  # what the pipeline made of the records: a Step
...     y_hat=np.array([1.5, np.nan]),
...     proba=None,
...     loss=np.array([0.25, np.nan]),
...     task=np.array([0, 0]),
...     boundary=np.array([False, False]),
...     model_version=4,
... )
>>> for key, value in encode_predictions(decoder.decode(msgs).records, step, decoder.labels):
...     print(key, value.decode())
b'in:3' {"id":"in:3:5:0","key":null,"task":0,"y_hat":1.5,"boundary":false,"model_version":4,\
"topic":"in","partition":3,"offset":5,"y":2.0,"loss":0.25}
b'k' {"id":"in:3:5:1","key":"k","task":0,"y_hat":null,"boundary":false,"model_version":4,\
"topic":"in","partition":3,"offset":5}
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import numpy as np

from streammeta.io.labels import Labels
from streammeta.io.records import Records

__all__ = ["Prediction", "encode_predictions"]

#: One compact strict encoder for every prediction (``json.dumps`` with options builds a new
#: encoder per call); ``allow_nan=False`` makes a non-finite float that slipped through an error.
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_INDICES = Labels()  # no class names: indices, or numbers in regression


class Prediction(Protocol):
    """What a prediction message says beside the record, one value per record (the run loop's
    ``Step`` is one): ``loss`` NaN where unlabelled, ``proba`` one row of class probabilities
    per record or ``None`` (regression)."""

    @property
    def y_hat(self) -> np.ndarray: ...
    @property
    def proba(self) -> np.ndarray | None: ...
    @property
    def loss(self) -> np.ndarray: ...
    @property
    def task(self) -> np.ndarray: ...
    @property
    def boundary(self) -> np.ndarray: ...
    @property
    def model_version(self) -> int: ...


def encode_predictions(
    records: Records, prediction: Prediction, labels: Labels = _INDICES
) -> list[tuple[bytes, bytes]]:
    """``(message key, value)`` of the prediction of each of ``records``, in order; ``labels``
    (the decoder's) names the classes of ``y`` and ``y_hat``."""
    labelled = records.labelled.tolist()
    ys = _json(labels.named(records.y))
    y_hats = _json(labels.named(prediction.y_hat))
    losses = _json(prediction.loss)
    proba = prediction.proba
    probas = None if proba is None else _json(proba.astype(np.float64).round(6))
    ids, keys, tasks = records.id.tolist(), records.key.tolist(), prediction.task.tolist()
    topics, parts, offsets = (
        records.topic.tolist(),
        records.partition.tolist(),
        records.offset.tolist(),
    )
    flags = prediction.boundary.tolist()
    version = int(prediction.model_version)
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


def _json(values: np.ndarray) -> list[Any]:
    """``values`` as JSON-ready Python values (nested lists for a matrix), ``None`` (null) for
    each float that is not finite."""
    if values.dtype.kind != "f":
        return values.tolist()
    bad = ~np.isfinite(values)
    if not bad.any():
        return values.tolist()
    nulled = values.astype(object)
    nulled[bad] = None
    return nulled.tolist()
