"""What the commands log, and how: one handler on the root logger, text or JSON lines, with
repeated warnings and errors rate-limited.

A client library with no broker to talk to repeats the same complaint many times a second
("Connection refused", librdkafka's "Connect to ipv4#127.0.0.1:9092 failed"). :class:`RateLimit`
lets the first of a kind through, drops the others for ``interval`` seconds, and the next one
let through says how many were dropped. Two records are of one kind when they come from the
same logger at the same level and their messages differ only in numbers (ports, addresses,
counts, durations).

>>> import io, logging
>>> from streammeta.config import LogConfig
>>> now = [0.0]
>>> out = io.StringIO()
>>> _ = setup_logging(LogConfig(), stream=out, clock=lambda: now[0], fmt="%(message)s")
>>> log = logging.getLogger("demo")
>>> for second in range(12):
...     now[0] = float(second)
...     log.warning("connect to 10.0.0.%d:9092 failed", second)
>>> print(out.getvalue(), end="")
connect to 10.0.0.0:9092 failed
connect to 10.0.0.10:9092 failed (9 similar messages suppressed in the last 10 s)
>>> reset_logging()
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from streammeta.config import LogConfig

__all__ = [
    "NOISY_LOGGERS",
    "TEXT_FORMAT",
    "JsonFormatter",
    "RateLimit",
    "reset_logging",
    "setup_logging",
]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Client libraries' loggers, held at WARNING unless ``log.level`` is DEBUG.
NOISY_LOGGERS = ("kafka",)
_NUMBER = re.compile(r"\d+")
_KEY_CHARS = 300  # of a message, enough to tell two kinds apart


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO 8601, UTC), ``level``, ``logger``, ``message``,
    and ``exc_info`` / ``stack_info`` when the record has them.

    >>> record = logging.LogRecord("streammeta", logging.INFO, "", 0, "%d records", (3,), None)
    >>> record.created = 0.0
    >>> JsonFormatter().format(record)
    '{"ts": "1970-01-01T00:00:00.000+00:00", "level": "INFO", "logger": "streammeta", \
"message": "3 records"}'
    """

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry)


@dataclass
class _Window:
    start: float  # when the last record of this kind was let through
    dropped: int = 0  # records of this kind dropped since


class RateLimit(logging.Filter):
    """Lets one record of a kind through per ``interval`` seconds, from ``level`` up (below it,
    every record passes); the next one let through after a drop carries the count.
    ``clock`` is injectable for tests. Thread-safe: client libraries log from their threads."""

    def __init__(
        self,
        interval: float = 10.0,
        *,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = 1024,
    ) -> None:
        super().__init__()
        self.interval = interval
        self.level = level
        self.max_kinds = max_kinds
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, int, str], _Window] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level:
            return True
        text = _message(record)
        kind = (record.name, record.levelno, _NUMBER.sub("#", text[:_KEY_CHARS]))
        with self._lock:
            now = self._clock()
            window = self._windows.get(kind)
            if window is not None and now - window.start < self.interval:
                window.dropped += 1
                return False
            if len(self._windows) >= self.max_kinds:
                self._forget(now)
            self._windows[kind] = _Window(now)
        if window is not None and window.dropped:
            record.msg = (
                f"{text} ({window.dropped} similar messages suppressed in the last "
                f"{now - window.start:.0f} s)"
            )
            record.args = None
        return True

    def _forget(self, now: float) -> None:
        """Drop the kinds not seen for an interval (a bounded table whatever the messages)."""
        old = [k for k, w in self._windows.items() if now - w.start >= self.interval]
        for kind in old or list(self._windows):
            del self._windows[kind]


def _message(record: logging.LogRecord) -> str:
    """The record's message; its template when the arguments do not fit it (a filter must not
    raise into the code that logs)."""
    try:
        return record.getMessage()
    except Exception:  # the handler reports the mismatch when it formats the record
        return str(record.msg)


class _Stderr(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes (the demo's live display
    redirects it, to print log lines above itself)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        """Ignored: ``StreamHandler.__init__`` assigns a stream, and this one never keeps one."""


_HANDLER = "streammeta"  # the name of the handler setup_logging installs


def setup_logging(
    config: LogConfig,
    *,
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    fmt: str = TEXT_FORMAT,
) -> logging.Handler:
    """Log to ``stream`` (default: standard error) as ``config`` says, from ``log.level`` up,
    through a :class:`RateLimit`; replaces the handler an earlier call installed and leaves
    others (a test's capture) alone. Client libraries' loggers are held at WARNING unless the
    level is DEBUG. Returns the handler."""
    handler: logging.Handler = _Stderr() if stream is None else logging.StreamHandler(stream)
    handler.set_name(_HANDLER)
    handler.setFormatter(JsonFormatter() if config.format == "json" else logging.Formatter(fmt))
    handler.addFilter(RateLimit(clock=clock))
    reset_logging()
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(config.level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.NOTSET if config.level == "DEBUG" else logging.WARNING
        )
    return handler


def reset_logging() -> None:
    """Remove the handler :func:`setup_logging` installed, if any."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER]:
        root.removeHandler(handler)
        handler.close()
