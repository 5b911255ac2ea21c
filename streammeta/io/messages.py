"""Raw messages -> the records they hold: parse each value (one JSON object or an array of
them) and split batch messages, with a dead letter for each message or element that is not a
record. The records are checked afterwards, as columns (:mod:`streammeta.io.decode`).

>>> from streammeta.io.base import RawMessage
>>> values = [b'{"x": [1]}', b'[{"x": [2]}, 3]', b"[]", b"{oops"]
>>> split = split_messages([RawMessage("in", 0, i, None, v, (), 0) for i, v in enumerate(values)])
>>> split.recs, split.where, split.index
([{'x': [1]}, {'x': [2]}], [0, 1], [-1, 0])
>>> [(where, index, letter.reason) for where, index, letter in split.dead]
[(1, 1, 'schema'), (2, -1, 'empty'), (3, -1, 'malformed_json')]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streammeta.io.base import RawMessage
from streammeta.io.problems import Dead, Problem, dead_letter, failure, kind

__all__ = ["Split", "parse", "split_messages"]

_EMPTY: Problem = ("empty", "ValueError", "empty batch message: send at least one record")
_TOO_DEEP: Problem = (
    "malformed_json",
    "RecursionError",
    "JSON nested too deep to parse; send objects nested a few levels at most",
)


@dataclass
class Split:
    """The records of a poll, each with its message's place in the poll (``where``) and its
    index in a batch message (-1: none), and dead letters for what is not a record."""

    recs: list[Any] = field(default_factory=list)
    where: list[int] = field(default_factory=list)
    index: list[int] = field(default_factory=list)
    dead: list[Dead] = field(default_factory=list)

    def add(self, where: int, index: int, rec: Any) -> None:
        self.recs.append(rec)
        self.where.append(where)
        self.index.append(index)


def split_messages(messages: Sequence[RawMessage], max_bytes: int = 1_000_000) -> Split:
    """The records of every message, and dead letters for what is not a record; a message
    larger than ``max_bytes`` is ``too_large``. Never raises for what a message holds."""
    split = Split()
    for mi, m in enumerate(messages):
        try:
            _split_one(mi, m, split, max_bytes)
        except Exception as exc:
            split.dead.append((mi, -1, dead_letter(m, failure(exc))))
    return split


def _split_one(mi: int, m: RawMessage, split: Split, max_bytes: int) -> None:
    """Add the records of ``m``, the ``mi``-th message of the poll, to ``split``, and what is
    not a record to its dead letters."""
    problem, parsed = parse(m.value, max_bytes)
    if problem is None and type(parsed) is list and not parsed:
        problem = _EMPTY
    if problem is not None:
        split.dead.append((mi, -1, dead_letter(m, problem)))
    elif type(parsed) is dict:
        split.add(mi, -1, parsed)
    else:
        for j, rec in enumerate(parsed):
            if type(rec) is dict:
                split.add(mi, j, rec)
            else:
                what = f"batch element {j} is a JSON {kind(rec)}; send objects"
                split.dead.append((mi, j, dead_letter(m, ("schema", "TypeError", what), j)))


def parse(value: bytes | None, max_bytes: int) -> tuple[Problem | None, Any]:
    """The parsed message, or the problem that makes the whole message unusable."""
    if value is None:
        return ("schema", "TypeError", "message has no value (a tombstone)"), None
    if len(value) > max_bytes:
        return (
            "too_large",
            "ValueError",
            f"message of {len(value)} bytes exceeds max_message_bytes = "
            f"{max_bytes}; split it into smaller batch messages",
        ), None
    try:  # UTF-8 as RFC 8259 asks (a BOM is ignored); not UTF-16/32 as json.loads guesses
        parsed = json.loads(value.decode("utf-8-sig"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        return ("malformed_json", type(exc).__name__, f"not valid JSON: {exc}"), None
    except RecursionError:
        return _TOO_DEEP, None
    if type(parsed) not in (dict, list):
        what = f"message is a JSON {kind(parsed)}; send an object or an array of objects"
        return ("schema", "TypeError", what), None
    return None, parsed
