"""Stopping within a bounded grace, whatever the broker does.

SIGTERM or Ctrl-C only sets a stop flag; the run loop then finishes its batch, delivers,
checkpoints and commits. When the broker is away that last checkpoint cannot complete, and
client calls can block for their own timeouts (tens of seconds). :class:`Grace` bounds the whole
stop: the loop asks it how much time is left for the final checkpoint, and a watchdog thread
ends the process with :data:`EXIT_GRACE` when the grace is spent, keeping the last checkpoint
(the records since are answered again after a restart, as at-least-once allows). A second
signal ends it at once the same way.

Exit codes of ``streammeta run`` (documented in its ``--help``): :data:`EXIT_OK` stopped cleanly,
everything checkpointed and committed; 1 an unexpected error; :data:`EXIT_USAGE` a user mistake
(configuration, a refused checkpoint, ``service.offset_reset = fail``); :data:`EXIT_GRACE` stopped
after the grace without a final checkpoint; 130 interrupted during start-up.

>>> grace = Grace(10.0)
>>> grace.remaining(now=0.0) is None  # not stopping
True
>>> grace.begin(now=100.0)
>>> grace.remaining(now=104.0)
6.0
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

__all__ = ["EXIT_GRACE", "EXIT_OK", "EXIT_USAGE", "Grace", "expire", "on_stop_signals"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_GRACE = 3

log = logging.getLogger(__name__)


class Grace:
    """The time a stop may take: ``seconds`` from the first stop request."""

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"seconds={seconds!r}: the grace must be positive")
        self.seconds = seconds
        self._deadline: float | None = None
        self._done = threading.Event()

    @property
    def begun(self) -> bool:
        return self._deadline is not None

    def begin(self, now: float | None = None) -> None:
        """Start the grace (once; later calls keep the first deadline)."""
        if self._deadline is None:
            self._deadline = (time.monotonic() if now is None else now) + self.seconds

    def remaining(self, now: float | None = None) -> float | None:
        """Seconds left, ``None`` when no stop was asked for."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - (time.monotonic() if now is None else now))

    def watch(self, describe: str) -> None:
        """Start the watchdog: when the grace is spent before :meth:`done`, log ``describe``
        (what is kept) and end the process with :data:`EXIT_GRACE`."""
        self.begin()
        threading.Thread(target=self._watchdog, args=(describe,), daemon=True).start()

    def done(self) -> None:
        """The stop completed: the watchdog stands down."""
        self._done.set()

    def _watchdog(self, describe: str) -> None:
        if not self._done.wait(self.remaining()):
            expire(
                f"the stop did not complete within service.shutdown_grace = {self.seconds:g} "
                f"s (broker unreachable?): exiting with code {EXIT_GRACE}; {describe}"
            )


def expire(message: str) -> None:
    """Log ``message``, flush every log handler and end the process with :data:`EXIT_GRACE`
    (no clean-up: client threads may be blocked on a dead broker)."""
    log.warning("%s", message)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_GRACE)


def on_stop_signals(
    stop: Callable[[], None], grace: Grace, *, stopping: Callable[[], bool]
) -> None:
    """SIGTERM and SIGINT call ``stop`` and start the watchdog of ``grace``; a signal while
    ``stopping()`` ends the process at once (the last checkpoint stands either way)."""
    kept = "the last checkpoint stands; records since it are answered again after a restart"

    def handle(signum: int, _frame: object) -> None:
        if stopping():
            expire(f"{signal.Signals(signum).name} again: exiting now; {kept}")
        log.info(
            "%s: stopping (finishing the batch, then checkpoint and commit; at most %g s)",
            signal.Signals(signum).name,
            grace.seconds,
        )
        stop()
        grace.watch(kept)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
