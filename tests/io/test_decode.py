"""Decoding raw messages into records and dead letters (no broker needed)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from streammeta.io import REASONS, Decoder, RawMessage, decode, messages


def message(value: Any, offset: int = 0, *, raw: bool = False, **fields: Any) -> RawMessage:
    """A message on ``in``/partition 0 holding ``value`` (JSON-encoded unless ``raw``)."""
    body = value if raw else json.dumps(value).encode()
    return RawMessage(**{"topic": "in", "partition": 0, "offset": offset, "key": None,
                         "value": body, "headers": (), "timestamp": 1_000, **fields})  # fmt: skip


def test_a_good_record_becomes_columns_with_defaults() -> None:
    out = Decoder(n_features=2).decode([message({"x": [1, 2.5], "y": 3}, offset=9)])
    r = out.records
    assert out.dead == [] and len(r) == 1
    assert r.x.dtype == np.float32 and r.x.tolist() == [[1.0, 2.5]]
    assert r.y.dtype == np.float32 and r.y.tolist() == [3.0] and r.labelled.tolist() == [True]
    assert r.id.tolist() == ["in:0:9"] and r.index.tolist() == [-1]
    assert r.key.tolist() == [None] and r.task.tolist() == [None]
    assert r.ts.tolist() == [1000.0]  # no ts: the message timestamp
    assert (r.topic.tolist(), r.partition.tolist(), r.offset.tolist()) == (["in"], [0], [9])
    assert out.next_offsets == {("in", 0): 10}


def test_optional_fields_are_kept_and_unlabelled_records_are_marked() -> None:
    rec = {"x": [1.0], "key": "tenant-a", "task": 4, "id": "r-1", "ts": 1700000000000}
    out = Decoder(n_features=1).decode([message(rec), message({"x": [2.0], "y": None})])
    r = out.records
    assert r.key.tolist() == ["tenant-a", None] and r.task.tolist() == [4, None]
    assert r.id.tolist() == ["r-1", "in:0:0"]
    assert r.ts.tolist() == [1.7e12, 1000.0]
    assert r.labelled.tolist() == [False, False] and r.y.tolist() == [0.0, 0.0]  # placeholder


def test_a_batch_message_keeps_its_good_records_and_dead_letters_the_bad() -> None:
    batch = [
        {"x": [1.0, 2.0], "y": 1.0},
        {"x": [1.0]},
        {"x": [3.0, 4.0], "y": 2.0},
        "not an object",
        {"x": [5.0, float("nan")]},
    ]
    value = json.dumps(batch).encode()
    out = Decoder(n_features=2).decode([message(value, offset=3, raw=True, key=b"k")])
    assert out.records.x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert out.records.index.tolist() == [0, 2]
    assert out.records.id.tolist() == ["in:0:3:0", "in:0:3:2"]
    assert out.records.offset.tolist() == [3, 3]
    assert [(d.index, d.reason) for d in out.dead] == [
        (1, "feature_count"),
        (3, "schema"),
        (4, "non_finite"),
    ]
    for dead in out.dead:
        assert dead.value == value and dead.key == b"k"  # the whole message, unchanged
        assert (dead.topic, dead.partition, dead.offset) == ("in", 0, 3)
    headers = dict(out.dead[0].headers())
    assert headers == {
        "streammeta.reason": b"feature_count",
        "streammeta.error_type": b"ValueError",
        "streammeta.error": b"x has 1 features; expected 2",
        "streammeta.topic": b"in",
        "streammeta.partition": b"0",
        "streammeta.offset": b"3",
        "streammeta.index": b"1",
    }


CASES = [  # value (bytes), decoder settings, reason, error type
    ('{"x": [1, 2]}'.encode("utf-16"), {}, "malformed_json", "UnicodeDecodeError"),
    (b"{not json", {}, "malformed_json", "JSONDecodeError"),
    (b"\xff\xfe\xfa", {}, "malformed_json", "UnicodeDecodeError"),
    (b"", {}, "malformed_json", "JSONDecodeError"),
    (b"42", {}, "schema", "TypeError"),
    (b'"text"', {}, "schema", "TypeError"),
    (b'{"y": 1}', {}, "schema", "KeyError"),
    (b'{"x": "1,2"}', {}, "schema", "TypeError"),
    (b'{"x": [1, "2"]}', {}, "schema", "TypeError"),
    (b'{"x": [1, null]}', {}, "schema", "TypeError"),
    (b'{"x": [1, 2], "y": [1]}', {}, "schema", "TypeError"),
    (b'{"x": [1, 2], "y": "high"}', {}, "schema", "TypeError"),
    (b'{"x": [1, 2], "key": 7}', {}, "schema", "TypeError"),
    (b'{"x": [1, 2], "task": 1.5}', {}, "schema", "TypeError"),
    (b'{"x": [1, 2], "ts": "now"}', {}, "schema", "TypeError"),
    (b'{"x": [1, 2, 3]}', {}, "feature_count", "ValueError"),
    (b'{"x": {"a": 1}}', {}, "feature_count", "ValueError"),
    (b'{"x": {"a": 1, "c": 2}}', {"feature_names": ["a", "b"]}, "feature_names", "ValueError"),
    (b'{"x": [1, NaN]}', {}, "non_finite", "ValueError"),
    (b'{"x": [1, Infinity]}', {}, "non_finite", "ValueError"),
    (b'{"x": [1, 1e999]}', {}, "non_finite", "ValueError"),
    (b'{"x": [1, 2], "y": NaN}', {}, "non_finite", "ValueError"),
    (b'{"x": [1, 2], "ts": -Infinity}', {}, "non_finite", "ValueError"),
    (b'{"x": [1, 2], "y": 3}', {"n_classes": 3}, "unknown_label", "ValueError"),
    (b'{"x": [1, 2], "y": -1}', {"n_classes": 3}, "unknown_label", "ValueError"),
    (b'{"x": [1, 2], "y": 0.5}', {"n_classes": 3}, "unknown_label", "ValueError"),
    (b'{"x": [1, 2], "y": "cat"}', {"n_classes": 2}, "unknown_label", "ValueError"),
    (b'{"x": [1, 2], "y": "eel"}', {"n_classes": 2, "labels": ["cat", "dog"]}, "unknown_label",
     "ValueError"),
    (b'{"x": [1, 2]}' + b" " * 100, {"max_message_bytes": 50}, "too_large", "ValueError"),
    (b"[" * 1500 + b"]" * 1500, {}, "malformed_json", "RecursionError"),
    (b"[" * 100_000 + b"]" * 100_000, {}, "malformed_json",
     "RecursionError"),
    (b'{"x": [1, 2], "key": ' + b"[" * 900 + b"]" * 900 + b"}", {}, "schema", "TypeError"),
    (b"[]", {}, "empty", "ValueError"),
    (b'{"x": [1e300, 2, 3]}', {"n_features": 3}, "non_finite", "ValueError"),
    (b'{"x": [1, 2], "y": 1e300}', {}, "non_finite", "ValueError"),
    (b'{"x": [1, 2], "y": -3.5e38}', {}, "non_finite", "ValueError"),
    (b'{"x": {"\\ud800": 1, "b": 2}}', {}, "bad_string", "UnicodeEncodeError"),
    (b'{"x": [1, 2], "key": "\\ud800"}', {}, "bad_string", "UnicodeEncodeError"),
    (b'{"x": [1, 2], "id": "ok\\udfff"}', {}, "bad_string", "UnicodeEncodeError"),
    (b'{"x": [1, 2], "task": "\\ud800x"}', {}, "bad_string", "UnicodeEncodeError"),
    (b'{"x": [1, 2], "concept": "\\udc80"}', {}, "bad_string", "UnicodeEncodeError"),
    (b'{"x": [1, 2], "y": "\\ud800"}', {"n_classes": 2, "labels": ["a", "b"]}, "bad_string",
     "UnicodeEncodeError"),
    (b'{"id": "r1", "y": null}', {}, "schema", "ValueError"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "settings", "reason", "error_type"), CASES)
def test_every_bad_record_is_dead_lettered_with_its_reason(
    value: bytes, settings: dict[str, Any], reason: str, error_type: str
) -> None:
    decoder = Decoder(**{"n_features": 2, **settings})
    good = {"x": list(range(decoder.n_features))}
    before, after = message(good, offset=4), message(good, offset=6)
    out = decoder.decode([before, message(value, offset=5, raw=True), after])
    assert [(d.reason, d.error_type) for d in out.dead] == [(reason, error_type)]
    dead = out.dead[0]
    assert dead.value == value and dead.offset == 5 and dead.index is None and dead.message
    assert dead.reason in REASONS
    assert out.records.offset.tolist() == [4, 6]  # the good messages around it go on
    assert out.next_offsets == {("in", 0): 7}


def test_every_reason_is_covered() -> None:
    # decode_error has no input that triggers it (it is a bug): see the tests below; the
    # service decides processing_error and unproducible (tests/runtime/test_service_faults.py)
    # (and the label join decides unmatched_label and duplicate_label: tests/runtime/test_labels.py)
    service = {"decode_error", "processing_error", "unproducible"}
    service |= {"unmatched_label", "duplicate_label"}
    assert {reason for _, _, reason, _ in CASES} | service == set(REASONS)
    assert REASONS[:7] == ("too_large", "malformed_json", "schema", "feature_count",
                           "feature_names", "non_finite", "unknown_label")  # fmt: skip


def test_bad_strings_name_the_field_and_leave_the_good_records_of_a_batch() -> None:
    value = b'[{"x": [1], "key": "a"}, {"x": [2], "key": "b\\ud800"}, {"x": [3], "id": "c"}]'
    out = Decoder(n_features=1).decode([message(value, raw=True)])
    assert out.records.x[:, 0].tolist() == [1.0, 3.0]
    assert out.records.key.tolist() == ["a", None] and out.records.id.tolist()[1] == "c"
    assert [(d.reason, d.index) for d in out.dead] == [("bad_string", 1)]
    assert out.dead[0].message.startswith("key is not valid UTF-8 text")
    assert "\\ud800" in out.dead[0].message  # escaped: the message itself encodes


def test_a_name_that_is_not_utf8_does_not_fix_the_feature_names() -> None:
    decoder = Decoder(n_features=2)
    out = decoder.decode([message(b'{"x": {"\\ud800": 1, "b": 2}}', raw=True),
                          message({"x": {"a": 1, "b": 2}})])  # fmt: skip
    assert [d.reason for d in out.dead] == ["bad_string"] and "a name in x" in out.dead[0].message
    assert decoder.feature_names == ("a", "b") and out.records.x.tolist() == [[1.0, 2.0]]


def test_float32_overflow_is_non_finite_but_a_large_ts_is_not() -> None:
    out = Decoder(n_features=2).decode(
        [message({"x": [3e38, -3e38], "y": 3e38, "ts": 1e300}), message({"x": [1, 4e38]})]
    )
    assert out.records.x.tolist() == [[pytest.approx(3e38), pytest.approx(-3e38)]]
    assert np.isfinite(out.records.y).all() and out.records.ts.tolist() == [1e300]
    assert [(d.reason, d.offset) for d in out.dead] == [("non_finite", 0)]
    assert "float32" in out.dead[0].message


def _poisoned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the checks of the metadata columns raise for any column holding the key
    ``poison``, as a bug would: the decoder cannot know in advance what raises."""
    meta = decode.meta

    def failing(cols: dict[str, Any], problems: dict[int, Any]) -> dict[str, Any]:
        if "poison" in cols["key"]:
            raise RuntimeError("boom")
        return meta(cols, problems)

    monkeypatch.setattr(decode, "meta", failing)


def test_an_unexpected_error_is_a_dead_letter_of_that_record_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _poisoned(monkeypatch)
    batch = [{"x": [1.0]}, {"x": [2.0], "key": "poison"}, {"x": [3.0], "y": [1]}, {"x": [4.0]}]
    messages = [
        message({"x": [0.0], "key": "k"}, offset=0),
        message(batch, offset=1),
        message({"x": [5.0], "key": "poison"}, offset=2),
        message(b"[]", offset=3, raw=True),
        message({"x": [6.0], "y": 2.5}, offset=4),
    ]
    out = Decoder(n_features=1).decode(messages)
    r = out.records
    assert r.x[:, 0].tolist() == [0.0, 1.0, 4.0, 6.0]  # everything good, in poll order
    assert r.offset.tolist() == [0, 1, 1, 4] and r.index.tolist() == [-1, 0, 3, -1]
    assert r.key.tolist() == ["k", None, None, None] and r.y[3] == 2.5
    assert [(d.offset, d.index, d.reason, d.error_type) for d in out.dead] == [
        (1, 1, "decode_error", "RuntimeError"),
        (1, 2, "schema", "TypeError"),  # the other checks still run per record
        (2, None, "decode_error", "RuntimeError"),
        (3, None, "empty", "ValueError"),
    ]
    assert "boom" in out.dead[0].message and out.dead[0].value == messages[1].value
    assert out.next_offsets == {("in", 0): 5}


def test_the_columnar_path_is_used_when_nothing_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: Any) -> Any:
        raise AssertionError("fell back")

    monkeypatch.setattr(Decoder, "_build_each", never)
    out = Decoder(n_features=1).decode([message({"x": [i]}, offset=i) for i in range(50)])
    assert len(out.records) == 50 and out.dead == []


def test_an_error_while_splitting_a_message_is_its_dead_letter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parse = messages.parse

    def failing(value: bytes | None, max_bytes: int) -> Any:
        if value == b'"bad"':
            raise ZeroDivisionError("a bug")
        return parse(value, max_bytes)

    monkeypatch.setattr(messages, "parse", failing)
    out = Decoder(n_features=1).decode([message(b'"bad"', raw=True), message({"x": [1]}, offset=1)])
    assert [(d.reason, d.error_type) for d in out.dead] == [("decode_error", "ZeroDivisionError")]
    assert out.records.x.tolist() == [[1.0]]


def test_a_tombstone_is_dead_lettered() -> None:
    out = Decoder(n_features=1).decode([message(None, raw=True)])
    assert [(d.reason, d.value) for d in out.dead] == [("schema", None)]


def test_named_features_take_the_order_of_the_first_record() -> None:
    decoder = Decoder(n_features=2)
    out = decoder.decode(
        [
            message({"x": {"b": 1.0, "a": 2.0}}),
            message([{"x": {"a": 4.0, "b": 3.0}}, {"x": [5.0, 6.0]}, {"x": {"a": 1, "c": 2}}]),
        ]
    )
    assert decoder.feature_names == ("b", "a")
    assert out.records.x.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert [(d.reason, d.index) for d in out.dead] == [("feature_names", 2)]
    assert "expected ['a', 'b']" in out.dead[0].message


def test_configured_feature_names_fix_the_order() -> None:
    decoder = Decoder(n_features=2, feature_names=["a", "b"])
    out = decoder.decode([message({"x": {"b": 1.0, "a": 2.0}})])
    assert out.records.x.tolist() == [[2.0, 1.0]]


def test_classification_labels_map_to_indices() -> None:
    decoder = Decoder(n_features=1, n_classes=3, labels=["cat", "dog", "eel"])
    out = decoder.decode(
        [message([{"x": [0], "y": "dog"}, {"x": [0], "y": 2}, {"x": [0], "y": 0.0}, {"x": [0]}])]
    )
    assert out.dead == []
    assert out.records.y.dtype == np.int64
    assert out.records.y.tolist() == [1, 2, 0, 0]  # the last: a placeholder
    assert out.records.labelled.tolist() == [True, True, True, False]


def test_select_and_empty_input() -> None:
    out = Decoder(n_features=1).decode([message([{"x": [i]} for i in range(4)])])
    picked = out.records.select(out.records.x[:, 0] >= 2)
    assert picked.x[:, 0].tolist() == [2.0, 3.0] and picked.index.tolist() == [2, 3]
    empty = Decoder(n_features=3).decode([])
    assert len(empty.records) == 0 and empty.records.x.shape == (0, 3)
    assert empty.dead == [] and empty.next_offsets == {}
    no_records = Decoder(n_features=3).decode([message([])])
    assert len(no_records.records) == 0 and no_records.next_offsets == {("in", 0): 1}
    assert [(d.reason, d.message) for d in no_records.dead] == [
        ("empty", "empty batch message: send at least one record")
    ]


def test_booleans_count_as_numbers_and_large_numbers_as_infinite() -> None:
    out = Decoder(n_features=2).decode([message(b'{"x": [true, 2], "y": 10000000000}', raw=True)])
    assert out.records.x.tolist() == [[1.0, 2.0]]
    huge = Decoder(n_features=1).decode([message(b'{"x": [1], "y": %s}' % (b"9" * 400), raw=True)])
    assert [d.reason for d in huge.dead] == ["non_finite"]


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"n_features": 0}, "n_features"),
        ({"n_features": 1, "n_classes": 1}, "n_classes"),
        ({"n_features": 1, "n_classes": 3, "labels": ["a"]}, "one label per class"),
        ({"n_features": 2, "feature_names": ["a", "a"]}, "distinct names"),
        ({"n_features": 1, "max_message_bytes": 0}, "max_message_bytes"),
    ],
)
def test_bad_settings_name_the_fix(settings: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Decoder(**settings)


def test_the_inferred_feature_order_survives_a_restart() -> None:
    """Named features in the order of the first record; a decoder restored from a snapshot
    reads them in that order even when its first record names them otherwise."""
    first = Decoder(n_features=2)
    first.decode([message({"x": {"b": 1.0, "a": 2.0}})])
    restarted = Decoder(n_features=2)
    restarted.restore(first.snapshot())
    out = restarted.decode([message({"x": {"a": 3.0, "b": 4.0}})])
    assert restarted.feature_names == ("b", "a") and out.records.x.tolist() == [[4.0, 3.0]]
    fresh = Decoder(n_features=2, feature_names=["a", "b"])
    fresh.restore({})  # a checkpoint from before the decoder had state: the settings stand
    assert fresh.feature_names == ("a", "b")
    with pytest.raises(ValueError, match="another model"):
        fresh.restore({"features": {"names": ["a", "b", "c"]}})


def test_a_label_record_without_x_is_label_only() -> None:
    decoder = Decoder(n_features=2, n_classes=2, labels=["no", "yes"])
    out = decoder.decode([
        message({"x": [1, 2], "id": "r1"}, offset=0),
        message({"id": "r1", "y": "yes", "key": "user-7"}, offset=1),
        message({"y": "no"}, offset=2),  # no id: an ordinary record missing its x
    ])  # fmt: skip
    assert out.records.label_only.tolist() == [False, True]
    assert out.records.labelled.tolist() == [False, True]
    assert out.records.y.tolist()[1] == 1 and out.records.key.tolist()[1] == "user-7"
    assert [d.reason for d in out.dead] == ["schema"]
