"""Exponential backoff with jitter, for retrying calls that fail while a broker is away.

>>> backoff = Backoff(initial_s=0.1, max_s=1.0, jitter=0.0)
>>> [backoff.next_delay() for _ in range(6)]
[0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
>>> backoff.reset()
>>> backoff.next_delay()
0.1
"""

from __future__ import annotations

import random
import threading

__all__ = ["Backoff"]


class Backoff:
    """Delays that double (``multiplier``) from ``initial_s`` up to ``max_s``; each is shortened
    by a random fraction of up to ``jitter`` so that many clients retrying together spread out.
    Call :meth:`reset` after a success."""

    def __init__(
        self,
        initial_s: float = 0.1,
        max_s: float = 30.0,
        *,
        multiplier: float = 2.0,
        jitter: float = 0.5,
        seed: int | None = None,
    ) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError(
                f"initial_s={initial_s!r}, max_s={max_s!r}: need 0 < initial_s <= max_s"
            )
        if multiplier < 1:
            raise ValueError(f"multiplier={multiplier!r}: must be >= 1")
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter={jitter!r}: must be in [0, 1]")
        self.initial_s = initial_s
        self.max_s = max_s
        self.multiplier = multiplier
        self.jitter = jitter
        self.seed = seed
        self._rng = random.Random(seed)
        self.attempts = 0

    def next_delay(self) -> float:
        """The delay before the next retry, in seconds (counts one attempt)."""
        base = min(self.max_s, self.initial_s * self.multiplier**self.attempts)
        self.attempts += 1
        return base * (1 - self.jitter * self._rng.random())

    def wait(self, stop: threading.Event | None = None) -> bool:
        """Sleep for :meth:`next_delay`, waking early when ``stop`` is set; ``True`` if it was."""
        delay = self.next_delay()
        return (stop or threading.Event()).wait(delay)

    def reset(self) -> None:
        """Start again from ``initial_s`` (after a success)."""
        self.attempts = 0
