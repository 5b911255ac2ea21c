"""The counters of one run of the service, for status lines, tests and metrics.

>>> stats = RunStats(dead_letters={"schema": 2, "non_finite": 1})
>>> stats.dead
3
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["RunStats"]


@dataclass
class RunStats:
    """Counters of one run, for status lines, tests and metrics."""

    polled: int = 0  # messages
    skipped: int = 0  # messages already learned from before a restart or rewind
    records: int = 0  # good records learned from
    dead_letters: dict[str, int] = field(default_factory=dict)  # by reason
    predictions: int = 0
    checkpoints: int = 0
    rewinds: int = 0  # deliveries that failed: back to the last checkpoint
    rebalances: int = 0
    commit_failures: int = 0  # commits refused (rebalance) or impossible (broker away)
    output_failures: int = 0  # outputs the broker refused for good (logged)
    offset_resets: int = 0  # resume offsets beyond a topic's end, reset by policy
    clean: bool = True  # the final checkpoint completed (else the grace ran out)
    last_checkpoint: float = field(default_factory=time.monotonic)
    started: float = field(default_factory=time.monotonic)

    @property
    def dead(self) -> int:
        return sum(self.dead_letters.values())
