"""What the run loop says while it runs: a progress line every few seconds, and boundaries
logged at most once per interval (a stream that switches every 100 records would otherwise fill
the log).

>>> import numpy as np
>>> progress = Progress(every_s=30.0, now=0.0)
>>> progress.add(records=100, loss=np.array([0.5, 1.5]), baseline_loss=np.array([1.0]))
>>> progress.line(now=10.0, lag=250, dead=2, tasks=3)
'progress: 100 records in 10 s (10/s), lag 250, loss 1 (baseline 1), dead letters 2, task 3'
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Progress", "RateLimited"]


class RateLimited:
    """Says whether an event may be logged now: once per ``every_s`` seconds, counting the
    events held back in between (``held``, reset when one is let through)."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.held = 0
        self._last = -math.inf

    def ready(self, now: float) -> bool:
        """``True`` for the first event of an interval; afterwards counts it in ``held``."""
        if now - self._last >= self.every_s:
            self._last = now
            return True
        self.held += 1
        return False

    def take_held(self) -> int:
        """The events held back since the last one let through (and forget them)."""
        held, self.held = self.held, 0
        return held


class Progress:
    """Records, rate and mean losses since the last line; :meth:`due` says when to write one
    (every ``every_s`` seconds; 0 turns the lines off)."""

    def __init__(self, every_s: float, now: float) -> None:
        self.every_s = every_s
        self._since = now
        self._records = 0
        self._loss = [0.0, 0]  # sum and count of finite losses, meta-learner
        self._base = [0.0, 0]  # the same for the shadow baseline

    def add(self, records: int, loss: np.ndarray, baseline_loss: np.ndarray | None) -> None:
        """Count a learned micro-batch."""
        self._records += records
        _accumulate(self._loss, loss)
        if baseline_loss is not None:
            _accumulate(self._base, baseline_loss)

    def due(self, now: float) -> bool:
        return self.every_s > 0 and now - self._since >= self.every_s

    def line(self, now: float, lag: int | None, dead: int, tasks: int) -> str:
        """The progress line since the last one (and start the next interval)."""
        seconds = max(now - self._since, 1e-9)
        parts = [
            f"progress: {self._records:,} records in {seconds:.0f} s "
            f"({self._records / seconds:,.0f}/s)",
            f"lag {lag:,}" if lag is not None else "lag unknown",
        ]
        if self._loss[1]:
            loss = f"loss {_mean(self._loss):.4g}"
            if self._base[1]:
                loss += f" (baseline {_mean(self._base):.4g})"
            parts.append(loss)
        parts += [f"dead letters {dead:,}", f"task {tasks}"]
        self._since, self._records = now, 0
        self._loss, self._base = [0.0, 0], [0.0, 0]
        return ", ".join(parts)


def _accumulate(acc: list[float], values: np.ndarray) -> None:
    finite = values[np.isfinite(values)]
    acc[0] += float(finite.sum())
    acc[1] += int(finite.size)


def _mean(acc: list[float]) -> float:
    return acc[0] / acc[1]
