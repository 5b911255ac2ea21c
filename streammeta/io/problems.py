"""What is wrong with a message or a record, and the dead letter that reports it.

A problem is ``(reason, error type, message)``: ``reason`` is one of
:data:`~streammeta.io.records.REASONS`, the message names the field, the value and the fix.

>>> from streammeta.io.base import RawMessage
>>> m = RawMessage("in", 0, 7, None, b'{"key": "x"}', (), 0)
>>> letter = dead_letter(m, unencodable("key", "a\\ud800"))
>>> letter.reason, letter.position
('bad_string', ('in', 0, 7))
>>> kind([1]), kind(True), kind(None)
('array', 'boolean', 'null')
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable

from streammeta.io.base import RawMessage
from streammeta.io.records import DeadLetter

__all__ = ["SHOW", "Dead", "Problem", "dead_letter", "failure", "kind", "unencodable"]

Problem = tuple[str, str, str]  # reason, error type, message
Dead = tuple[int, int, DeadLetter]  # message's place in the poll, index (-1: none), letter

#: Values quoted in messages: short, however long or deep they are.
SHOW = reprlib.Repr()
SHOW.maxstring = SHOW.maxother = 80
SHOW.maxlevel = 3

_KINDS: Iterable[tuple[type, str]] = (
    (bool, "boolean"),
    (int, "number"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def kind(value: object) -> str:
    """The JSON type name of a parsed value."""
    return next((name for t, name in _KINDS if isinstance(value, t)), "null")


def unencodable(name: str, text: str) -> Problem | None:
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


def failure(exc: Exception) -> Problem:
    """A message whose decoding raised: a bug, reported in a ``decode_error`` dead letter."""
    name = type(exc).__name__
    what = f"decoding raised {name}: {exc}; please report it with this message"
    return ("decode_error", name, what)


def dead_letter(m: RawMessage, problem: Problem, index: int | None = None) -> DeadLetter:
    """The dead letter of message ``m`` (of its record ``index`` in a batch message; ``None``
    or negative: the whole message)."""
    reason, error_type, message = problem
    idx = None if index is None or index < 0 else index
    return DeadLetter(
        m.value, m.key, reason, error_type, message, m.topic, m.partition, m.offset, idx
    )
