"""streammeta.logs: text and JSON lines, the level, quiet client libraries, and the rate limit
on repeated warnings (on a fake clock)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from streammeta.config import LogConfig
from streammeta.logs import RateLimit, reset_logging, setup_logging


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root, kafka = logging.getLogger(), logging.getLogger("kafka")
    levels = root.level, kafka.level
    yield
    reset_logging()
    root.setLevel(levels[0])
    kafka.setLevel(levels[1])


def _lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_text_lines_carry_time_level_logger_and_message() -> None:
    out = io.StringIO()
    setup_logging(LogConfig(), stream=out)
    logging.getLogger("streammeta.test").info("checkpoint at %d records", 500)
    (line,) = _lines(out)
    date, clock, level, rest = line.split(" ", 3)
    assert len(date) == 10 and clock.count(":") == 2
    assert (level, rest) == ("INFO", "streammeta.test: checkpoint at 500 records")


def test_json_lines_are_one_object_each_with_the_exception() -> None:
    out = io.StringIO()
    setup_logging(LogConfig(format="json"), stream=out)
    log = logging.getLogger("streammeta.test")
    log.warning('a "quoted"\nmessage')
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    first, second = (json.loads(line) for line in _lines(out))
    assert set(first) == {"ts", "level", "logger", "message"}
    assert first["message"] == 'a "quoted"\nmessage' and first["level"] == "WARNING"
    assert first["logger"] == "streammeta.test" and first["ts"].endswith("+00:00")
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exc_info"]


def test_the_level_filters_and_client_libraries_are_quiet_unless_debugging() -> None:
    out = io.StringIO()
    setup_logging(LogConfig(level="WARNING"), stream=out)
    logging.getLogger("streammeta.test").info("not shown")
    logging.getLogger("streammeta.test").warning("shown")
    (line,) = _lines(out)
    assert line.endswith("WARNING streammeta.test: shown")
    setup_logging(LogConfig(level="INFO"), stream=out)
    logging.getLogger("kafka.conn").info("kafka-python chatter")
    logging.getLogger("kafka.conn").warning("kafka-python problem")
    assert "chatter" not in out.getvalue() and "kafka-python problem" in out.getvalue()
    setup_logging(LogConfig(level="DEBUG"), stream=out)
    logging.getLogger("kafka.conn").debug("kafka-python detail")
    assert "kafka-python detail" in out.getvalue()


def test_setting_up_again_replaces_the_handler_and_leaves_others() -> None:
    other = logging.NullHandler()
    logging.getLogger().addHandler(other)
    try:
        first, second = io.StringIO(), io.StringIO()
        setup_logging(LogConfig(), stream=first)
        setup_logging(LogConfig(), stream=second)
        logging.getLogger("streammeta.test").warning("once")
        assert first.getvalue() == "" and second.getvalue().count("once") == 1
        assert other in logging.getLogger().handlers
    finally:
        logging.getLogger().removeHandler(other)


def test_the_default_stream_is_standard_error_at_the_time_of_logging(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging(LogConfig())
    logging.getLogger("streammeta.test").warning("to stderr")
    captured = capsys.readouterr()
    assert "to stderr" in captured.err and captured.out == ""


def _record(msg: str, *, name: str = "kafka.conn", level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


def test_repeated_errors_pass_once_per_interval_with_the_count() -> None:
    clock = Clock()
    limit = RateLimit(10.0, clock=clock)
    passed = []
    for i in range(1302):  # a burst in one second, addresses and counts varying
        clock.now = 1000.0 + i / 1302
        record = _record(f"Connect to ipv4#127.0.0.1:{9000 + i % 7} failed ({i}ms)")
        if limit.filter(record):
            passed.append(record.getMessage())
    assert passed == ["Connect to ipv4#127.0.0.1:9000 failed (0ms)"]
    clock.now = 1012.5
    late = _record("Connect to ipv4#127.0.0.1:9092 failed (3ms)")
    assert limit.filter(late)
    assert late.getMessage() == (
        "Connect to ipv4#127.0.0.1:9092 failed (3ms) "
        "(1301 similar messages suppressed in the last 12 s)"
    )
    clock.now = 1030.0
    again = _record("Connect to ipv4#127.0.0.1:9092 failed (3ms)")
    assert limit.filter(again) and "suppressed" not in again.getMessage()


def test_other_kinds_levels_and_loggers_are_not_held_back() -> None:
    clock = Clock()
    limit = RateLimit(10.0, clock=clock)
    records = [
        _record("Connection refused"),
        _record("Authentication failed"),
        _record("Connection refused", level=logging.WARNING),
        _record("Connection refused", name="streammeta.io.confluent"),
    ]
    assert all(limit.filter(r) for r in records)
    assert not limit.filter(_record("Connection refused"))
    infos = [_record("checkpoint at 1 records", level=logging.INFO) for _ in range(5)]
    assert all(limit.filter(r) for r in infos)  # below WARNING: never limited


def test_the_table_of_kinds_stays_bounded() -> None:
    clock = Clock()
    limit = RateLimit(10.0, clock=clock, max_kinds=8)
    for i in range(100):
        assert limit.filter(_record(f"error kind {chr(65 + i % 26)}{chr(65 + i // 26)}"))
    assert len(limit._windows) <= 8


def test_a_message_whose_arguments_do_not_fit_does_not_raise_in_the_filter() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "%d items", ("many",), None)
    assert RateLimit(clock=Clock()).filter(record)


def test_the_handler_rate_limits_what_it_writes() -> None:
    clock, out = Clock(), io.StringIO()
    setup_logging(LogConfig(format="json"), stream=out, clock=clock)
    log = logging.getLogger("kafka.conn")
    for i in range(50):
        log.error("<BrokerConnection host=127.0.0.1:%d>: connect attempt returned error 111", i)
    clock.now += 10
    log.error("<BrokerConnection host=127.0.0.1:9>: connect attempt returned error 111")
    messages = [json.loads(line)["message"] for line in _lines(out)]
    assert len(messages) == 2
    assert messages[1].endswith("(49 similar messages suppressed in the last 10 s)")
