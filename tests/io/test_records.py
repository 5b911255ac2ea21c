"""Dead letters that always fit the broker, and the record columns."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streammeta.io import Decoder, RawMessage
from streammeta.io.records import (
    MAX_HEADER_BYTES,
    MIN_MESSAGE_BYTES,
    RECORD_OVERHEAD_BYTES,
    DeadLetter,
    Records,
)

Headers = list[tuple[str, bytes]]


def letter(
    value: bytes | None = b"{}", key: bytes | None = b"k", message: str = "bad", index: int = 2
) -> DeadLetter:
    return DeadLetter(value, key, "schema", "TypeError", message, "in", 1, 9, index)


def size(value: bytes, key: bytes | None, headers: Headers) -> int:
    return len(value) + len(key or b"") + sum(len(n) + len(v) for n, v in headers)


def test_a_small_dead_letter_goes_out_unchanged() -> None:
    dead = letter(b'{"x": 1}')
    value, key, headers = dead.to_message(1_000_000)
    assert (value, key) == (b'{"x": 1}', b"k") and headers == dead.headers()
    assert dict(headers)["streammeta.index"] == b"2"
    assert "streammeta.truncated" not in dict(headers)


def test_a_value_too_large_is_truncated_with_its_size_and_digest() -> None:
    original = bytes(range(256)) * 8_000  # 2 MB
    value, key, headers = letter(original).to_message(1_000_000)
    named = dict(headers)
    assert named["streammeta.truncated"] == b"true"
    assert named["streammeta.original_size"] == b"2048000"
    assert named["streammeta.sha256"] == hashlib.sha256(original).hexdigest().encode()
    assert original.startswith(value) and len(value) > 990_000
    assert size(value, key, headers) == 1_000_000 - RECORD_OVERHEAD_BYTES


def test_a_huge_key_and_message_are_capped_and_the_value_keeps_the_rest() -> None:
    # the 700 KB case of issue 10: under the limit, but its key repeated in a header is not
    key = b"K" * 700_000
    dead = letter(b'{"key": "' + key + b'"}', key=key, message=f"key is {'K' * 700_000!r}")
    value, capped, headers = dead.to_message(1_000_000)
    assert capped == b"K" * (MAX_HEADER_BYTES - 3) + b"..."
    assert dict(headers)["streammeta.error"].endswith(b"...")
    assert all(len(v) <= MAX_HEADER_BYTES for _, v in headers)
    assert value == dead.value and "streammeta.truncated" not in dict(headers)


def test_header_values_are_utf8_whatever_they_hold_and_cut_between_characters() -> None:
    dead = letter(message="lone \ud800 surrogate, then " + "é" * 1000)
    named = dict(dead.headers())
    error = named["streammeta.error"]
    assert error.startswith(b"lone \\ud800 surrogate") and error.endswith(b"...")
    assert len(error) <= MAX_HEADER_BYTES
    error.decode("utf-8")  # no character split by the cut


def test_a_tombstone_is_an_empty_value() -> None:
    value, key, headers = letter(None, key=None).to_message(1_000_000)
    assert (value, key) == (b"", None) and dict(headers)["streammeta.reason"] == b"schema"


def test_a_limit_below_the_floor_counts_as_the_floor() -> None:
    value, key, headers = letter(b"v" * 100_000).to_message(10)
    assert size(value, key, headers) == MIN_MESSAGE_BYTES - RECORD_OVERHEAD_BYTES


text = st.text(max_size=3_000)  # surrogates included


@settings(max_examples=150, deadline=None)
@given(
    value_size=st.one_of(st.none(), st.integers(0, 3_000_000)),
    key=st.one_of(st.none(), st.binary(max_size=3_000)),
    message=text,
    topic=text,
    index=st.one_of(st.none(), st.integers(0, 10**12)),
    max_bytes=st.integers(MIN_MESSAGE_BYTES, 3_000_000),
)
@example(2_000_000, b"k" * 3_000, "\ud800" * 3_000, "é" * 3_000, 7, MIN_MESSAGE_BYTES)
@example(1_000_000 - 1_024 - 400, b"k", "m", "in", None, 1_000_000)  # just over, with headers
def test_a_dead_letter_always_fits(
    value_size: int | None,
    key: bytes | None,
    message: str,
    topic: str,
    index: int | None,
    max_bytes: int,
) -> None:
    original = None if value_size is None else b"\xfe" * value_size
    dead = DeadLetter(original, key, "malformed_json", "ValueError", message, topic, 0, 1, index)
    value, capped, headers = dead.to_message(max_bytes)
    assert size(value, capped, headers) <= max_bytes - RECORD_OVERHEAD_BYTES
    assert (original or b"").startswith(value)
    truncated = dict(headers).get("streammeta.truncated") == b"true"
    assert truncated == (value != (original or b""))
    for _, v in headers:
        v.decode("utf-8")
        assert len(v) <= MAX_HEADER_BYTES


def test_records_concat_keeps_order_and_shapes() -> None:
    messages = [RawMessage("in", 0, i, None, b'{"x": [%d, 1]}' % i, (), 0) for i in range(3)]
    decoder = Decoder(n_features=2)
    parts = [decoder.decode(messages[:1]).records, decoder.decode(messages[1:]).records]
    whole = Records.concat([decoder.decode([]).records, *parts])
    assert whole.x.dtype == np.float32 and whole.x[:, 0].tolist() == [0.0, 1.0, 2.0]
    assert whole.id.tolist() == ["in:0:0", "in:0:1", "in:0:2"]
    with pytest.raises(ValueError, match="at least one part"):
        Records.concat([])
