"""The fuzz benchmark's messages: every kind of bad message it sends, and valid oddities that
must be accepted, each a seeded generator that says what the service must make of it.

A kind is a function of a ``random.Random`` returning a :class:`Message`: the value and key to
send (raw bytes, ``None`` for a tombstone) and what must come back, a prediction for each valid
record and one dead letter for each invalid one. Most kinds are one record with a field
replaced (``_FIELDS``) or a message written as text (``_TEXTS``); the rest are functions.
Whether a kind is valid follows the design's "Records" for a regression learner with one
feature named ``f0`` (how the benchmark runs the service) and RFC 8259 (JSON between systems
is UTF-8; a parser may ignore a byte order mark); the reason of a dead letter is not
prescribed.

>>> import random
>>> msg = KINDS["mixed_batch"](random.Random(0))
>>> msg.expect, len(msg.good) + msg.dead
('mixed', 12)
>>> KINDS["utf8_bom"](random.Random(0)).expect
'good'
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from streammeta.io.simulate import encode

__all__ = ["KINDS", "Kind", "Message", "plan"]


@dataclass(frozen=True)
class Message:
    """One message to send, and what the service must make of it: a prediction for each of
    ``good`` (-1 for a message holding one object, else the indices in the batch array) and
    ``dead`` dead letters."""

    value: bytes | None
    key: bytes | None = None
    good: tuple[int, ...] = ()
    dead: int = 0

    @property
    def expect(self) -> str:
        return "mixed" if self.good and self.dead else "good" if self.good else "dead"


Kind = Callable[[random.Random], Message]
#: Every kind of message the benchmark sends besides the good records, by name.
KINDS: dict[str, Kind] = {}
_DROP = object()  # a field left out


def _record(rng: random.Random) -> dict[str, Any]:
    return {"x": [round(rng.uniform(-5, 5), 4)], "y": round(rng.uniform(-5, 5), 4)}


def _dumps(value: object) -> bytes:
    """JSON as Python writes it: lone surrogates as ``\\ud800`` escapes, NaN as ``NaN``."""
    return json.dumps(value, separators=(",", ":")).encode()


def _good(value: bytes) -> Message:
    return Message(value, good=(-1,))


def _dead(value: bytes | None, n: int = 1, key: bytes | None = None) -> Message:
    return Message(value, key, dead=n)


#: Single records with fields replaced (``_DROP``: left out): fields, whether valid.
_FIELDS: dict[str, tuple[dict[str, Any], bool]] = {
    "x_booleans": ({"x": [True]}, True),
    "x_named_features": ({"x": {"f0": 0.5}}, True),
    "x_denormal_1e-320": ({"x": [1e-320]}, True),
    "x_negative_zero": ({"x": [-0.0]}, True),
    "y_null_unlabelled": ({"y": None}, True),
    "y_boolean": ({"y": True}, True),
    "control_chars_escaped": ({"key": "tab\there\u0001\u001f\n"}, True),
    "unicode_key": ({"key": "ключ-🔑-ü"}, True),
    "unicode_field_names": ({"ünïcødé-字段": "ignored"}, True),
    "x_string": ({"x": "0.5"}, False),
    "x_nested_list": ({"x": [[0.5]]}, False),
    "x_wrong_names": ({"x": {"zz": 0.5}}, False),
    "x_missing": ({"x": _DROP}, False),
    "x_null": ({"x": None}, False),
    "x_too_many_features": ({"x": [0.1, 0.2, 0.3]}, False),
    "x_too_few_features": ({"x": []}, False),
    "x_1e300_float32_overflow": ({"x": [1e300]}, False),
    "x_huge_integer": ({"x": [10**400]}, False),
    "x_nan_token": ({"x": [float("nan")]}, False),
    "x_infinity_token": ({"x": [float("inf")]}, False),
    "x_minus_infinity_token": ({"x": [float("-inf")]}, False),
    "y_1e300_float32_overflow": ({"y": 1e300}, False),
    "y_nan_token": ({"y": float("nan")}, False),
    "y_list": ({"y": [1.0]}, False),
    "y_object": ({"y": {"v": 1.0}}, False),
    "y_string": ({"y": "1.0"}, False),
    "ts_string": ({"ts": "2024-01-01"}, False),
    "ts_infinity_token": ({"ts": float("inf")}, False),
    "key_number": ({"key": 7}, False),
    "task_float": ({"task": 1.5}, False),
    "id_number": ({"id": 12}, False),
    "key_lone_surrogate": ({"key": "\ud800"}, False),
    "id_lone_surrogate": ({"id": "id-\udfff"}, False),
    "task_lone_surrogate": ({"task": "\ud800"}, False),
    "concept_lone_surrogate": ({"concept": "\udc00"}, False),
    "label_unknown_id": ({"x": _DROP, "id": "no-such-id"}, False),
}
#: Messages written as text, ``%(x)s`` and ``%(y)s`` filled in: text, whether valid.
_TEXTS: dict[str, tuple[str, bool]] = {
    "duplicate_keys_last_valid": ('{"x":"bad","x":[%(x)s],"y":%(y)s}', True),
    "duplicate_keys_last_invalid": ('{"x":[%(x)s],"y":%(y)s,"x":"bad"}', False),
    "x_1e400_text": ('{"x":[1e400],"y":%(y)s}', False),
    "raw_control_bytes": ('{"x":[%(x)s],"y":%(y)s,"key":"a\x01b\x1f"}', False),
    "trailing_garbage": ('{"x":[%(x)s],"y":%(y)s} trailing', False),
    "two_objects": ('{"x":[%(x)s]}{"x":[%(x)s]}', False),
    "single_quotes": ("{'x':[%(x)s],'y':%(y)s}", False),
    "hex_number": ('{"x":[0x1F],"y":%(y)s}', False),
    "comment": ('/* c */{"x":[%(x)s],"y":%(y)s}', False),
    "empty_object": ("{}", False),
    "whitespace_only": (" \n\t\r ", False),
    "scalar_number": ("42", False),
    "scalar_string": ('"x"', False),
    "scalar_true": ("true", False),
    "scalar_null": ("null", False),
    "empty_batch": ("[]", False),
    "nested_batch": ('[[{"x":[%(x)s],"y":%(y)s}]]', False),
}


def _from_fields(fields: dict[str, Any], valid: bool) -> Kind:
    def make(rng: random.Random) -> Message:
        rec = {**_record(rng), **fields}
        value = _dumps({k: v for k, v in rec.items() if v is not _DROP})
        return _good(value) if valid else _dead(value)

    return make


def _from_text(text: str, valid: bool) -> Kind:
    def make(rng: random.Random) -> Message:
        rec = _record(rng)
        value = (text % {"x": rec["x"][0], "y": rec["y"]} if "%(" in text else text).encode()
        return _good(value) if valid else _dead(value)

    return make


def _kind(name: str) -> Callable[[Kind], Kind]:
    def register(make: Kind) -> Kind:
        KINDS[name] = make
        return make

    return register


KINDS.update({name: _from_fields(*case) for name, case in _FIELDS.items()})
KINDS.update({name: _from_text(*case) for name, case in _TEXTS.items()})


@_kind("nested_arrays_1500")
def _nested_1500(rng: random.Random) -> Message:
    return _dead(b"[" * 1500 + b"]" * 1500)


@_kind("nested_arrays_100k")
def _nested_100k(rng: random.Random) -> Message:
    return _dead(b"[" * 100_000 + b"]" * 100_000)


@_kind("nested_objects_1500")
def _nested_objects(rng: random.Random) -> Message:
    return _dead(b'{"a":' * 1500 + b"1" + b"}" * 1500)


@_kind("too_large_2mb")
def _too_large(rng: random.Random) -> Message:
    return _dead(_dumps({**_record(rng), "pad": "p" * 2_000_000}))


@_kind("huge_bad_key_700kb")
def _huge_bad_key(rng: random.Random) -> Message:
    return _dead(_dumps({**_record(rng), "key": ["K" * 700_000]}))


@_kind("very_long_id")
def _long_id(rng: random.Random) -> Message:
    return _good(_dumps({**_record(rng), "id": f"{rng.random()}-" + "i" * 100_000}))


@_kind("random_bytes")
def _random_bytes(rng: random.Random) -> Message:
    return _dead(b"\x00" + rng.randbytes(rng.randint(1, 300)))  # NUL first: never JSON


@_kind("truncated_record")
def _truncated(rng: random.Random) -> Message:
    whole = _dumps(_record(rng))
    return _dead(whole[: rng.randint(1, len(whole) - 1)])


@_kind("truncated_batch")
def _truncated_batch(rng: random.Random) -> Message:
    whole = _dumps([_record(rng) for _ in range(3)])
    return _dead(whole[: rng.randint(2, len(whole) - 1)])


@_kind("batch_of_scalars")
def _batch_of_scalars(rng: random.Random) -> Message:
    return _dead(b'[1,"a",null]', n=3)  # one dead letter per element


@_kind("good_batch")
def _good_batch(rng: random.Random) -> Message:
    n = rng.randint(2, 50)
    return Message(_dumps([_record(rng) for _ in range(n)]), good=tuple(range(n)))


#: Bad elements of a mixed batch array.
_BAD_ELEMENTS: tuple[object, ...] = (
    {"x": "0.5"}, {"x": [1e300]}, {"x": [0.1, 0.2]}, {"x": [0.5], "key": "\ud800"}, 5, None, [],
)  # fmt: skip


@_kind("mixed_batch")
def _mixed_batch(rng: random.Random) -> Message:
    items = [_record(rng) if rng.random() < 0.5 else rng.choice(_BAD_ELEMENTS) for _ in range(12)]
    one_good, one_bad = rng.sample(range(12), 2)
    items[one_good], items[one_bad] = _record(rng), rng.choice(_BAD_ELEMENTS)
    good = tuple(i for i, it in enumerate(items) if isinstance(it, dict) and "y" in it)
    return Message(_dumps(items), good=good, dead=len(items) - len(good))


@_kind("utf8_bom")  # RFC 8259 lets a parser ignore a BOM: a valid record
def _bom(rng: random.Random) -> Message:
    return _good(b"\xef\xbb\xbf" + _dumps(_record(rng)))


@_kind("utf16_json")  # RFC 8259: JSON between systems is UTF-8
def _utf16(rng: random.Random) -> Message:
    return _dead(_dumps(_record(rng)).decode().encode("utf-16"))


@_kind("utf32_json")
def _utf32(rng: random.Random) -> Message:
    return _dead(_dumps(_record(rng)).decode().encode("utf-32"))


@_kind("invalid_utf8")
def _invalid_utf8(rng: random.Random) -> Message:
    return _dead(_dumps(_record(rng))[:-1] + b',"key":"\xff\xfe"}')


@_kind("tombstone")  # a key: kafka-python refuses a message with neither key nor value
def _tombstone(rng: random.Random) -> Message:
    return _dead(None, key=b"tombstone")


@_kind("empty_value")
def _empty(rng: random.Random) -> Message:
    return _dead(b"")


def plan(
    rng: random.Random, good: Iterator[dict[str, Any]], records: int
) -> list[tuple[str, Message]]:
    """``records`` good records with one message of every kind at random positions."""
    messages = [("good_record", _good(encode([rec])[0])) for rec in islice(good, records)]
    for name, make in KINDS.items():
        messages.insert(rng.randint(0, len(messages)), (name, make(rng)))
    return messages
