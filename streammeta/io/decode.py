r"""Raw Kafka messages -> validated records in columns, plus dead letters for what is bad.

A message value is one JSON object or a JSON array of objects (a batch message); see "Records" in
the design. Each record is checked on its own: in a batch message the good records go on and
each bad one becomes a :class:`DeadLetter` that carries the whole original message (bytes
unchanged) and the record's index within it. A message that cannot be read at all (too large,
not JSON, neither object nor array) is one dead letter without an index.

Rules: ``x`` is a list of ``n_features`` numbers, or an object name -> number whose names are
the configured ``feature_names`` or else the names of the first such record seen (in its order);
JSON ``true``/``false`` count as 1/0 as everywhere in Python. ``y`` absent or null means
unlabelled; otherwise a finite number for regression, and for classification a class index
``0..n_classes-1`` or, when ``labels`` are configured, one of those strings (its position is
the index). ``key`` and ``id`` are strings, ``task`` and ``concept`` (the true concept, for
evaluation only) a string or integer, ``ts`` a finite number; other fields are ignored. The
checks run on whole columns (numpy), not record by record, except where a column already failed
as a whole.

Robust by construction: no message stops the others of its poll. A message nested too deeply
for the parser is ``malformed_json``; ``[]`` is one dead letter (``empty``); a string field
(``key``, ``id``, ``task``, ``concept``, a string ``y``) that cannot be encoded as UTF-8 (a lone
surrogate such as ``"\ud800"``) is ``bad_string``; ``x`` and a regression ``y`` must be finite
*after* the cast to the learner's float32 (``1e300`` is ``non_finite``), ``ts`` as a float64. If
the columnar checks raise anything unexpected, the batch is decoded again record by record, and a
record whose own decoding raises becomes a ``decode_error`` dead letter (a bug to report).

>>> from streammeta.io.base import RawMessage
>>> msg = RawMessage("in", 0, 7, None, b'[{"x": [1, 2], "y": 0.5}, {"x": [1]}]', (), 1000)
>>> out = Decoder(n_features=2).decode([msg])
>>> out.records.x.tolist(), out.records.id.tolist()
([[1.0, 2.0]], ['in:0:7:0'])
>>> [(d.reason, d.index, d.message) for d in out.dead]
[('feature_count', 1, 'x has 1 features; expected 2')]
>>> deep, surrogate = b"[" * 5000 + b"]" * 5000, b'{"x": [1, 2], "key": "\\ud800"}'
>>> odd = [deep, b"[]", b'{"x": [1e300, 2]}', surrogate]
>>> out = Decoder(n_features=2).decode(
...     [RawMessage("in", 0, i, None, v, (), 0) for i, v in enumerate(odd)]
... )
>>> [(d.offset, d.reason) for d in out.dead], len(out.records)
([(0, 'malformed_json'), (1, 'empty'), (2, 'non_finite'), (3, 'bad_string')], 0)
"""

from __future__ import annotations

import gc
import json
import logging
import math
import reprlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streammeta.io.base import RawMessage
from streammeta.io.records import DeadLetter, Decoded, Records

__all__ = ["Decoder"]

log = logging.getLogger(__name__)

_NUMBER_KINDS = "biuf"
_Problem = tuple[str, str, str]  # reason, error type, message
_Dead = tuple[int, int, DeadLetter]  # message's place in the poll, index (-1: none), letter
_NONE = type(None)
_META: tuple[tuple[str, set[type], str], ...] = (  # field, JSON types allowed, what to send
    ("key", {str, _NONE}, "a string"),
    ("task", {str, int, _NONE}, "a string or an integer"),
    ("concept", {str, int, _NONE}, "a string or an integer"),
    ("id", {str, _NONE}, "a string"),
    ("ts", {int, float, _NONE}, "a number (epoch milliseconds)"),
)
_FIELDS = ("x", "y", "key", "task", "concept", "id", "ts")
#: Fields whose strings must be valid UTF-8 (they go out in keys, JSON, headers and metrics).
_TEXT = ("key", "id", "task", "concept", "y")
_EMPTY: _Problem = ("empty", "ValueError", "empty batch message: send at least one record")
_TOO_DEEP: _Problem = (
    "malformed_json",
    "RecursionError",
    "JSON nested too deep to parse; send objects nested a few levels at most",
)
_SHOW = reprlib.Repr()  # values quoted in messages: short, however long or deep they are
_SHOW.maxstring = _SHOW.maxother = 80
_SHOW.maxlevel = 3


@dataclass
class _Split:
    """The records of a poll, each with its message's place in the poll (``where``) and its
    index in a batch message (-1: none), and dead letters for what is not a record."""

    recs: list[Any] = field(default_factory=list)
    where: list[int] = field(default_factory=list)
    index: list[int] = field(default_factory=list)
    dead: list[_Dead] = field(default_factory=list)

    def add(self, where: int, index: int, rec: Any) -> None:
        self.recs.append(rec)
        self.where.append(where)
        self.index.append(index)


class Decoder:
    """Decodes and validates raw message values; see the module docstring for the rules.

    ``feature_names`` fixes the order of named features; when empty, the names of the first
    record whose ``x`` is an object of ``n_features`` entries fix it (then
    :attr:`feature_names` reports them). ``labels`` maps string class labels to indices.
    """

    def __init__(
        self,
        n_features: int,
        *,
        n_classes: int = 0,
        labels: Sequence[str] = (),
        feature_names: Sequence[str] = (),
        max_message_bytes: int = 1_000_000,
    ) -> None:
        if n_features < 1:
            raise ValueError(f"n_features={n_features!r}: must be at least 1")
        if n_classes == 1 or n_classes < 0:
            raise ValueError(f"n_classes={n_classes!r}: must be 0 (regression) or at least 2")
        if labels and len(labels) != n_classes:
            raise ValueError(
                f"labels={list(labels)!r}: need one label per class, n_classes={n_classes}"
            )
        if feature_names and len(set(feature_names)) != n_features:
            raise ValueError(
                f"feature_names={list(feature_names)!r}: need {n_features} distinct names "
                "(n_features)"
            )
        if max_message_bytes < 1:
            raise ValueError(f"max_message_bytes={max_message_bytes!r}: must be at least 1")
        self.n_features = n_features
        self.n_classes = n_classes
        self.labels = tuple(labels)
        self.max_message_bytes = max_message_bytes
        self._names = tuple(feature_names) or None
        self._label_index = {label: i for i, label in enumerate(self.labels)}

    @property
    def feature_names(self) -> tuple[str, ...] | None:
        """The fixed order of named features, ``None`` until one is known."""
        return self._names

    def decode(self, messages: Sequence[RawMessage]) -> Decoded:
        """Decode ``messages`` (as polled) into good records and dead letters; never raises
        for what a message holds."""
        with _collector_paused():
            split = self._split(messages)
            try:
                records, bad = self._build(messages, split.recs, split.where, split.index)
            except Exception:
                log.warning(
                    "decoding %d records as columns failed; decoding them one by one",
                    len(split.recs),
                    exc_info=True,
                )
                records, bad = self._build_each(messages, split)
        dead = split.dead + bad
        dead.sort(key=lambda item: item[:2])
        next_offsets = {(m.topic, m.partition): m.offset + 1 for m in messages}
        return Decoded(records, [letter for *_, letter in dead], next_offsets)

    def _split(self, messages: Sequence[RawMessage]) -> _Split:
        """The records of every message, and dead letters for what is not a record."""
        split = _Split()
        for mi, m in enumerate(messages):
            try:
                self._split_one(mi, m, split)
            except Exception as exc:
                split.dead.append((mi, -1, _dead(m, _failure(exc))))
        return split

    def _split_one(self, mi: int, m: RawMessage, split: _Split) -> None:
        """Add the records of ``m``, the ``mi``-th message of the poll, to ``split``, and what
        is not a record to its dead letters."""
        problem, parsed = self._parse(m.value)
        if problem is None and type(parsed) is list and not parsed:
            problem = _EMPTY
        if problem is not None:
            split.dead.append((mi, -1, _dead(m, problem)))
        elif type(parsed) is dict:
            split.add(mi, -1, parsed)
        else:
            for j, rec in enumerate(parsed):
                if type(rec) is dict:
                    split.add(mi, j, rec)
                else:
                    what = f"batch element {j} is a JSON {_kind(rec)}; send objects"
                    split.dead.append((mi, j, _dead(m, ("schema", "TypeError", what), j)))

    def _build(
        self, messages: Sequence[RawMessage], recs: list[Any], where: list[int], index: list[int]
    ) -> tuple[Records, list[_Dead]]:
        """Check records as whole columns: the good ones as :class:`Records`, dead letters for
        the others. ``where`` is each record's message, ``index`` its place in a batch."""
        cols = {name: [r.get(name) for r in recs] for name in _FIELDS}
        problems: dict[int, _Problem] = {}
        self._strings(cols, problems)
        x = self._features(cols["x"], problems)
        y, labelled = self._targets(cols["y"], problems)
        meta = self._meta(cols, problems)
        keep = np.ones(len(recs), dtype=bool)
        keep[list(problems)] = False
        dead = [
            (where[i], index[i], _dead(messages[where[i]], problem, index[i]))
            for i, problem in problems.items()
        ]
        records = self._columns(
            messages, keep, np.asarray(where, np.int64), index, x, y, labelled, meta
        )
        return records, dead

    def _build_each(
        self, messages: Sequence[RawMessage], split: _Split
    ) -> tuple[Records, list[_Dead]]:
        """:meth:`_build` record by record: a record whose checks raise is a dead letter."""
        parts = [self._build((), [], [], [])[0]]  # the empty columns fix the shapes
        dead: list[_Dead] = []
        for rec, mi, j in zip(split.recs, split.where, split.index, strict=True):
            m = messages[mi]
            try:
                part, bad = self._build((m,), [rec], [0], [j])
            except Exception as exc:
                dead.append((mi, j, _dead(m, _failure(exc), j)))
            else:
                parts.append(part)
                dead += [(mi, j, letter) for _, _, letter in bad]
        return Records.concat(parts), dead

    def _parse(self, value: bytes | None) -> tuple[_Problem | None, Any]:
        """The parsed message, or the problem that makes the whole message unusable."""
        if value is None:
            return ("schema", "TypeError", "message has no value (a tombstone)"), None
        if len(value) > self.max_message_bytes:
            return (
                "too_large",
                "ValueError",
                f"message of {len(value)} bytes exceeds max_message_bytes = "
                f"{self.max_message_bytes}; split it into smaller batch messages",
            ), None
        try:  # UTF-8 as RFC 8259 asks (a BOM is ignored); not UTF-16/32 as json.loads guesses
            parsed = json.loads(value.decode("utf-8-sig"))
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            return ("malformed_json", type(exc).__name__, f"not valid JSON: {exc}"), None
        except RecursionError:
            return _TOO_DEEP, None
        if type(parsed) not in (dict, list):
            what = f"message is a JSON {_kind(parsed)}; send an object or an array of objects"
            return ("schema", "TypeError", what), None
        return None, parsed

    def _strings(self, cols: dict[str, list[Any]], problems: dict[int, _Problem]) -> None:
        """Strings that cannot be encoded as UTF-8, checked a whole column at once and record
        by record only in a column that fails."""
        for name in _TEXT:
            col = cols[name]
            if col.count(None) == len(col) or _unencodable(name, _joined(col)) is None:
                continue
            for i, v in enumerate(col):
                problem = _unencodable(name, v) if type(v) is str else None
                if problem is not None:
                    problems.setdefault(i, problem)

    def _features(self, xs: list[Any], problems: dict[int, _Problem]) -> np.ndarray:
        """``x`` of every record as float32 ``[n, n_features]`` (zeros where bad), finite in
        float32: ``1e300`` is not."""
        d = self.n_features
        x = _numbers(xs)
        if x is None or x.ndim != 2 or x.shape[1] != d:
            x = np.zeros((len(xs), d))
            for i, v in enumerate(xs):
                problem = self._row(v, x, i)
                if problem is not None:
                    problems.setdefault(i, problem)
        x32 = _float32(x)
        for i in np.flatnonzero(~np.isfinite(x32).all(axis=1)).tolist():
            what = "x holds NaN, infinity or a number beyond float32 (|x| > 3.4e38)"
            problems.setdefault(i, ("non_finite", "ValueError", what))
        return x32

    def _row(self, v: Any, x: np.ndarray, i: int) -> _Problem | None:
        """Put one record's features into ``x[i]``, or say what is wrong with them."""
        if type(v) is dict:
            if self._names is None and len(v) == self.n_features:
                problem = _unencodable("a name in x", "".join(v))
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
                    f"x names {_SHOW.repr(sorted(v))}; expected {sorted(self._names)}",
                )
            v = [v[name] for name in self._names]
        if type(v) is not list:
            what = "x is missing" if v is None else f"x is a JSON {_kind(v)}"
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
            what = f"x holds a JSON {_kind(odd)} ({_SHOW.repr(odd)}); send numbers"
            return ("schema", "TypeError", what)
        try:
            x[i] = v
        except OverflowError:
            return ("non_finite", "OverflowError", "x holds a number too large for a float")
        return None

    def _targets(
        self, ys: list[Any], problems: dict[int, _Problem]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``y`` as float64 (class index for classification) and the labelled mask."""
        labelled = np.fromiter((v is not None for v in ys), dtype=bool, count=len(ys))
        codes = ys
        if self.labels:
            codes = [self._label_index.get(v, -1) if type(v) is str else v for v in ys]
        y = _numbers([0 if v is None else v for v in codes])
        if y is None or y.ndim != 1:
            y = np.zeros(len(ys))
            for i, v in enumerate(codes):
                if v is None or type(v) in (int, float, bool):
                    y[i] = 0 if v is None else _float(v)
                elif type(v) is str:
                    problems.setdefault(i, self._unknown(v))
                else:
                    what = f"y is a JSON {_kind(v)}; send a number, a class label or null"
                    problems.setdefault(i, ("schema", "TypeError", what))
        finite = np.isfinite(y if self.n_classes else _float32(y))  # regression y is float32
        for i in np.flatnonzero(labelled & ~finite).tolist():
            what = "y is NaN, infinite or beyond float32 (|y| > 3.4e38)"
            problems.setdefault(i, ("non_finite", "ValueError", what))
        if self.n_classes:
            known = (y >= 0) & (y < self.n_classes) & (y == np.floor(y))
            for i in np.flatnonzero(labelled & np.isfinite(y) & ~known).tolist():
                problems.setdefault(i, self._unknown(ys[i]))
        return y, labelled

    def _unknown(self, label: object) -> _Problem:
        names = f" or one of {list(self.labels)}" if self.labels else ""
        if not self.n_classes:
            return ("schema", "TypeError", f"y is {_SHOW.repr(label)}; regression needs a number")
        return (
            "unknown_label",
            "ValueError",
            f"y = {_SHOW.repr(label)} is not a class: expected 0..{self.n_classes - 1}{names}",
        )

    def _meta(self, cols: dict[str, list[Any]], problems: dict[int, _Problem]) -> dict[str, Any]:
        """``key``, ``task``, ``concept``, ``id`` (lists) and ``ts`` (float64, NaN where
        absent) of every record, type-checked."""
        out: dict[str, Any] = {}
        for name, kinds, expect in _META:
            col = cols[name]
            if not set(map(type, col)) <= kinds:
                for i, v in enumerate(col):
                    if type(v) not in kinds:
                        what = f"{name} is {_SHOW.repr(v)}; send {expect} or leave it out"
                        problems.setdefault(i, ("schema", "TypeError", what))
            out[name] = col
        given = np.fromiter((type(v) in (int, float) for v in out["ts"]), bool, len(out["ts"]))
        nums = [v if ok else 0.0 for v, ok in zip(out["ts"], given.tolist(), strict=True)]
        try:
            ts = np.array(nums, dtype=np.float64)
        except OverflowError:
            ts = np.array([_float(v) for v in nums])
        for i in np.flatnonzero(given & ~np.isfinite(ts)).tolist():
            problems.setdefault(i, ("non_finite", "ValueError", "ts is NaN or infinite"))
        out["ts"] = np.where(given, ts, np.nan)
        return out

    def _columns(
        self,
        messages: Sequence[RawMessage],
        keep: np.ndarray,
        where: np.ndarray,
        index: list[int],
        x: np.ndarray,
        y: np.ndarray,
        labelled: np.ndarray,
        meta: dict[str, Any],
    ) -> Records:
        """The kept records as :class:`Records`, with each message's position per record."""
        n = len(messages)
        topic = np.array([m.topic for m in messages], dtype=object)[where[keep]]
        partition = np.fromiter((m.partition for m in messages), np.int32, n)[where[keep]]
        offset = np.fromiter((m.offset for m in messages), np.int64, n)[where[keep]]
        stamp = np.fromiter((m.timestamp for m in messages), np.float64, n)[where[keep]]
        idx = np.asarray(index, np.int32)[keep]
        given = _objects(meta["id"], keep).tolist()
        if None in given:
            places = zip(
                topic.tolist(), partition.tolist(), offset.tolist(), idx.tolist(), strict=True
            )
            given = [
                v if v is not None else f"{t}:{p}:{o}:{i}" if i >= 0 else f"{t}:{p}:{o}"
                for v, (t, p, o, i) in zip(given, places, strict=True)
            ]
        ids = _objects(given, np.ones(len(given), dtype=bool))
        ts = meta["ts"][keep]
        ts = np.where(np.isnan(ts), np.where(stamp >= 0, stamp, np.nan), ts)
        labelled = labelled[keep]
        if self.n_classes:
            yk = np.where(labelled, y[keep], -1).astype(np.int64)
        else:
            yk = np.where(labelled, y[keep], np.nan).astype(np.float32)
        return Records(
            x=x[keep],
            y=yk,
            labelled=labelled,
            key=_objects(meta["key"], keep),
            task=_objects(meta["task"], keep),
            concept=_objects(meta["concept"], keep),
            id=ids,
            ts=ts,
            topic=topic,
            partition=partition,
            offset=offset,
            index=idx,
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector: parsed records hold no reference cycles, and
    collecting while tens of thousands of fresh dicts are alive costs as much as parsing them
    (process-wide, for the few milliseconds of one decode)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _numbers(values: list[Any]) -> np.ndarray | None:
    """``values`` as a float64 array when they are all numbers of one shape, else ``None``."""
    try:
        arr = np.asarray(values)
    except (ValueError, OverflowError):
        return None
    return arr.astype(np.float64) if arr.dtype.kind in _NUMBER_KINDS else None


def _float32(a: np.ndarray) -> np.ndarray:
    """``a`` cast to float32, where numbers beyond its range become infinite (silently)."""
    with np.errstate(over="ignore"):
        return a.astype(np.float32)


def _float(v: float) -> float:
    try:
        return float(v)
    except OverflowError:
        return math.inf


def _objects(values: list[Any], keep: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out[keep]


def _kind(value: object) -> str:
    """The JSON type name of a parsed value."""
    kinds: Iterable[tuple[type, str]] = (
        (bool, "boolean"),
        (int, "number"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    )
    return next((name for t, name in kinds if isinstance(value, t)), "null")


def _joined(col: list[Any]) -> str:
    """The strings of ``col`` joined (one check for the whole column)."""
    try:
        return "".join(col)
    except TypeError:  # not only strings
        return "".join([v for v in col if type(v) is str])


def _unencodable(name: str, text: str) -> _Problem | None:
    """The problem with ``text`` (of field ``name``) when it cannot be encoded as UTF-8."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        odd = exc.object[exc.start : exc.end].encode("unicode_escape").decode()
        what = (
            f"{name} is not valid UTF-8 text: it holds the lone surrogate {odd} at character "
            f"{exc.start}; send text without unpaired surrogates"
        )
        return ("bad_string", "UnicodeEncodeError", what)
    return None


def _failure(exc: Exception) -> _Problem:
    """A message whose decoding raised: a bug, reported in a ``decode_error`` dead letter."""
    kind = type(exc).__name__
    what = f"decoding raised {kind}: {exc}; please report it with this message"
    return ("decode_error", kind, what)


def _dead(m: RawMessage, problem: _Problem, index: int | None = None) -> DeadLetter:
    reason, error_type, message = problem
    idx = None if index is None or index < 0 else index
    return DeadLetter(
        m.value, m.key, reason, error_type, message, m.topic, m.partition, m.offset, idx
    )
