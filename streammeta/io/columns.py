"""Record fields as whole columns: the numeric casts the checks share, and the checks of the
fields beside ``x`` and ``y`` (``key``, ``task``, ``concept``, ``id``, ``ts`` and every string's
UTF-8). A column is checked at once (numpy) and record by record only when it fails as a whole;
each record's first problem is kept in ``problems`` (record position -> problem).

>>> problems = {}
>>> cols = {"key": ["a", 3], "task": [1, None], "concept": [None, None], "id": [None, "r"],
...         "ts": [5, None], "y": [None, None]}
>>> out = meta(cols, problems)
>>> out["ts"].tolist(), problems[1][0]
([5.0, nan], 'schema')
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from streammeta.io.problems import SHOW, Problem, unencodable

__all__ = ["FIELDS", "as_float", "float32", "meta", "numbers", "objects", "strings"]

#: The fields of a record that decoding reads; any other is ignored.
FIELDS = ("x", "y", "key", "task", "concept", "id", "ts")
_NUMBER_KINDS = "biuf"
_NONE = type(None)
_META: tuple[tuple[str, set[type], str], ...] = (  # field, JSON types allowed, what to send
    ("key", {str, _NONE}, "a string"),
    ("task", {str, int, _NONE}, "a string or an integer"),
    ("concept", {str, int, _NONE}, "a string or an integer"),
    ("id", {str, _NONE}, "a string"),
    ("ts", {int, float, _NONE}, "a number (epoch milliseconds)"),
)
#: Fields whose strings must be valid UTF-8 (they go out in keys, JSON, headers and metrics).
_TEXT = ("key", "id", "task", "concept", "y")


def numbers(values: list[Any]) -> np.ndarray | None:
    """``values`` as a float64 array when they are all numbers of one shape, else ``None``."""
    try:
        arr = np.asarray(values)
    except (ValueError, OverflowError):
        return None
    return arr.astype(np.float64) if arr.dtype.kind in _NUMBER_KINDS else None


def float32(a: np.ndarray) -> np.ndarray:
    """``a`` cast to float32, where numbers beyond its range become infinite (silently)."""
    with np.errstate(over="ignore"):
        return a.astype(np.float32)


def as_float(v: float) -> float:
    """``v`` as a float, infinite when too large for one."""
    try:
        return float(v)
    except OverflowError:
        return math.inf


def objects(values: list[Any], keep: np.ndarray) -> np.ndarray:
    """The ``keep`` entries of ``values`` as an object array (lists inside stay lists)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out[keep]


def strings(cols: dict[str, list[Any]], problems: dict[int, Problem]) -> None:
    """Strings that cannot be encoded as UTF-8, checked a whole column at once and record by
    record only in a column that fails."""
    for name in _TEXT:
        col = cols[name]
        if col.count(None) == len(col) or unencodable(name, _joined(col)) is None:
            continue
        for i, v in enumerate(col):
            problem = unencodable(name, v) if type(v) is str else None
            if problem is not None:
                problems.setdefault(i, problem)


def _joined(col: list[Any]) -> str:
    """The strings of ``col`` joined (one check for the whole column)."""
    try:
        return "".join(col)
    except TypeError:  # not only strings
        return "".join([v for v in col if type(v) is str])


def meta(cols: dict[str, list[Any]], problems: dict[int, Problem]) -> dict[str, Any]:
    """``key``, ``task``, ``concept``, ``id`` (lists) and ``ts`` (float64, NaN where absent)
    of every record, type-checked."""
    out: dict[str, Any] = {}
    for name, kinds, expect in _META:
        col = cols[name]
        if not set(map(type, col)) <= kinds:
            for i, v in enumerate(col):
                if type(v) not in kinds:
                    what = f"{name} is {SHOW.repr(v)}; send {expect} or leave it out"
                    problems.setdefault(i, ("schema", "TypeError", what))
        out[name] = col
    given = np.fromiter((type(v) in (int, float) for v in out["ts"]), bool, len(out["ts"]))
    nums = [v if ok else 0.0 for v, ok in zip(out["ts"], given.tolist(), strict=True)]
    try:
        ts = np.array(nums, dtype=np.float64)
    except OverflowError:
        ts = np.array([as_float(v) for v in nums])
    for i in np.flatnonzero(given & ~np.isfinite(ts)).tolist():
        problems.setdefault(i, ("non_finite", "ValueError", "ts is NaN or infinite"))
    out["ts"] = np.where(given, ts, np.nan)
    return out
