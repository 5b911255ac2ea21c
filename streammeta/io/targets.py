"""The ``y`` column and the labelled mask, made here once: ``y`` absent or null means
unlabelled, and such a record's ``y`` holds 0, a valid class index and a finite number, so no
one downstream needs to replace it before a loss; everyone reads ``labelled`` for the rest.
Otherwise ``y`` is a finite number (in float32) for regression, and for classification a class
index ``0..n_classes-1`` or one of the configured class names.

>>> problems = {}
>>> y, labelled = targets(["dog", 2, None, "yak"], Labels(3, ["cat", "dog", "eel"]), problems)
>>> y.tolist(), labelled.tolist(), problems[3][0]
([1.0, 2.0, 0.0, -1.0], [True, True, False, True], 'unknown_label')
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streammeta.io.columns import as_float, float32, numbers
from streammeta.io.labels import Labels
from streammeta.io.problems import SHOW, Problem, kind

__all__ = ["targets"]


def targets(
    ys: list[Any], labels: Labels, problems: dict[int, Problem]
) -> tuple[np.ndarray, np.ndarray]:
    """``y`` as float64 (the class index for classification; 0 where unlabelled) and the
    labelled mask."""
    labelled = np.fromiter((v is not None for v in ys), dtype=bool, count=len(ys))
    codes = labels.codes(ys)
    y = numbers([0 if v is None else v for v in codes])
    if y is None or y.ndim != 1:
        y = np.zeros(len(ys))
        for i, v in enumerate(codes):
            if v is None or type(v) in (int, float, bool):
                y[i] = 0 if v is None else as_float(v)
            elif type(v) is str:
                problems.setdefault(i, _unknown(v, labels))
            else:
                what = f"y is a JSON {kind(v)}; send a number, a class label or null"
                problems.setdefault(i, ("schema", "TypeError", what))
    finite = np.isfinite(y if labels.n_classes else float32(y))  # regression y is float32
    for i in np.flatnonzero(labelled & ~finite).tolist():
        what = "y is NaN, infinite or beyond float32 (|y| > 3.4e38)"
        problems.setdefault(i, ("non_finite", "ValueError", what))
    if labels.n_classes:
        known = (y >= 0) & (y < labels.n_classes) & (y == np.floor(y))
        for i in np.flatnonzero(labelled & np.isfinite(y) & ~known).tolist():
            problems.setdefault(i, _unknown(ys[i], labels))
    return y, labelled


def _unknown(label: object, labels: Labels) -> Problem:
    if not labels.n_classes:
        return ("schema", "TypeError", f"y is {SHOW.repr(label)}; regression needs a number")
    return (
        "unknown_label",
        "ValueError",
        f"y = {SHOW.repr(label)} is not a class: expected {labels.expected()}",
    )
