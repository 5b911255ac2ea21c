"""What ``/readyz`` answers: whether the service makes progress, and if not, why.

The Prometheus sensor feeds it from the run loop's hooks (assignment, polls, records processed,
checkpoints, trouble).

>>> ready = Readiness()
>>> ready.check(stale_s=300)
(False, 'no partitions assigned')
>>> ready.partitions = 1
>>> ready.polled()
>>> ready.check(stale_s=300)
(True, 'ok')
>>> ready.check(stale_s=300, later_s=31)
(False, 'no poll for 31 s')
"""

from __future__ import annotations

import time

__all__ = ["Readiness"]


class Readiness:
    """The assignment, the last poll, the first record waiting for a checkpoint, and any
    trouble the run loop reported."""

    def __init__(self) -> None:
        self.partitions = 0  # assigned now
        self.last_poll = 0.0  # monotonic; 0 before the first
        self.last_checkpoint = time.time()
        self.trouble: str | None = None  # broker unreachable, input topic missing
        self._pending_since: float | None = None  # first record processed since a checkpoint

    def polled(self) -> None:
        self.last_poll = time.monotonic()

    def processed(self) -> None:
        """Records were processed (learned or dead-lettered): they wait for a checkpoint."""
        self._pending_since = self._pending_since or time.time()

    def checkpointed(self) -> None:
        self.last_checkpoint = time.time()
        self._pending_since = None

    def check(
        self, *, stale_s: float, poll_s: float = 30.0, later_s: float = 0.0
    ) -> tuple[bool, str]:
        """Ready when partitions are assigned, a poll returned within ``poll_s`` seconds and
        no processed record has waited more than ``stale_s`` for a checkpoint (an idle service
        with nothing to checkpoint stays ready); the reason says which failed. ``later_s``
        asks as if that many seconds had passed (for tests). Trouble the run loop reported
        (broker unreachable, input topic missing) comes first."""
        if self.trouble is not None:
            return False, self.trouble
        if self.partitions == 0:
            return False, "no partitions assigned"
        since_poll = time.monotonic() + later_s - self.last_poll
        if since_poll > poll_s:
            return False, f"no poll for {since_poll:.0f} s"
        if self._pending_since is not None:
            waited = time.time() + later_s - self._pending_since
            if waited > stale_s:
                return False, (
                    f"records processed {waited:.0f} s ago are not checkpointed "
                    f"(stale after {stale_s:.0f} s)"
                )
        return True, "ok"
