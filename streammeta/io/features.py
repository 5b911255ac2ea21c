"""The ``x`` column: a list of ``n_features`` numbers, or an object name -> number whose names
are the configured ones or else those of the first such record seen, in its order. That
inferred order is state: :meth:`Features.snapshot` keeps it for a checkpoint, so a restart
reads named features in the same order.

>>> features = Features(2)
>>> problems = {}
>>> features.column([{"b": 1, "a": 2}, {"a": 3, "b": 4}, [5, 6]], problems).tolist()
[[1.0, 2.0], [4.0, 3.0], [5.0, 6.0]]
>>> features.names, problems
(('b', 'a'), {})
>>> restarted = Features(2)
>>> restarted.restore(features.snapshot())
>>> restarted.column([{"a": 3, "b": 4}], problems).tolist()
[[4.0, 3.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from streammeta.io.columns import float32, numbers
from streammeta.io.problems import SHOW, Problem, kind, unencodable

__all__ = ["Features"]


class Features:
    """Reads ``x`` into float32 ``[n, n_features]``; ``names`` fixes the order of named
    features (empty: taken from the first record that names ``n_features`` of them)."""

    def __init__(self, n_features: int, names: Sequence[str] = ()) -> None:
        if n_features < 1:
            raise ValueError(f"n_features={n_features!r}: must be at least 1")
        if names and len(set(names)) != n_features:
            raise ValueError(
                f"feature_names={list(names)!r}: need {n_features} distinct names (n_features)"
            )
        self.n_features = n_features
        self._configured = tuple(names)
        self._names = self._configured or None

    @property
    def names(self) -> tuple[str, ...] | None:
        """The fixed order of named features, ``None`` until one is known."""
        return self._names

    def snapshot(self) -> dict[str, Any]:
        """The order of named features found so far (``None``: none yet), for a checkpoint."""
        return {"names": None if self._names is None else list(self._names)}

    def restore(self, state: dict[str, Any]) -> None:
        """Take the order a :meth:`snapshot` kept; a state without one (an older checkpoint)
        leaves the configured order, or none."""
        names = state.get("names")
        if names is not None and (len(names) != self.n_features or len(set(names)) != len(names)):
            raise ValueError(
                f"feature names {list(names)!r} in the state: need {self.n_features} distinct "
                "names (n_features); the checkpoint belongs to another model"
            )
        self._names = tuple(names) if names is not None else self._configured or None

    def column(self, xs: list[Any], problems: dict[int, Problem]) -> np.ndarray:
        """``x`` of every record as float32 ``[n, n_features]`` (zeros where bad), finite in
        float32: ``1e300`` is not."""
        d = self.n_features
        x = numbers(xs)
        if x is None or x.ndim != 2 or x.shape[1] != d:
            x = np.zeros((len(xs), d))
            for i, v in enumerate(xs):
                problem = self._row(v, x, i)
                if problem is not None:
                    problems.setdefault(i, problem)
        x32 = float32(x)
        for i in np.flatnonzero(~np.isfinite(x32).all(axis=1)).tolist():
            what = "x holds NaN, infinity or a number beyond float32 (|x| > 3.4e38)"
            problems.setdefault(i, ("non_finite", "ValueError", what))
        return x32

    def _row(self, v: Any, x: np.ndarray, i: int) -> Problem | None:
        """Put one record's features into ``x[i]``, or say what is wrong with them."""
        if type(v) is dict:
            if self._names is None and len(v) == self.n_features:
                problem = unencodable("a name in x", "".join(v))
                if problem is not None:
                    return problem
                self._names = tuple(v)
            if self._names is None:
                return (
                    "feature_count",
                    "ValueError",
                    f"x has {len(v)} named features; expected {self.n_features}",
                )
            if v.keys() != set(self._names):
                return (
                    "feature_names",
                    "ValueError",
                    f"x names {SHOW.repr(sorted(v))}; expected {sorted(self._names)}",
                )
            v = [v[name] for name in self._names]
        if type(v) is not list:
            what = "x is missing" if v is None else f"x is a JSON {kind(v)}"
            return (
                "schema",
                "TypeError" if v is not None else "KeyError",
                f"{what}; send a list of {self.n_features} numbers or an object name -> number",
            )
        if len(v) != self.n_features:
            return (
                "feature_count",
                "ValueError",
                f"x has {len(v)} features; expected {self.n_features}",
            )
        if not all(type(e) in (int, float, bool) for e in v):
            odd = next(e for e in v if type(e) not in (int, float, bool))
            what = f"x holds a JSON {kind(odd)} ({SHOW.repr(odd)}); send numbers"
            return ("schema", "TypeError", what)
        try:
            x[i] = v
        except OverflowError:
            return ("non_finite", "OverflowError", "x holds a number too large for a float")
        return None
