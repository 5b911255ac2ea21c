"""The mean of the last values of a stream, fed by arrays (the prequential loss and accuracy).

>>> import numpy as np
>>> recent = RollingMean(3)
>>> recent.mean
nan
>>> recent.add(np.array([1.0, np.nan, 2.0]))  # non-finite values are skipped
>>> recent.add(np.array([3.0, 4.0]))
>>> recent.mean  # of 2, 3, 4
3.0
"""

from __future__ import annotations

import numpy as np

__all__ = ["RollingMean"]


class RollingMean:
    """Mean of the last ``size`` finite values added (NaN before the first)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size={size!r}: need size >= 1")
        self.size = size
        self._values = np.full(size, np.nan)
        self._at = 0

    def add(self, values: np.ndarray) -> None:
        values = values[np.isfinite(values)][-self.size :]
        idx = (self._at + np.arange(len(values))) % self.size
        self._values[idx] = values
        self._at = (self._at + len(values)) % self.size

    @property
    def mean(self) -> float:
        seen = self._values[np.isfinite(self._values)]
        return float(seen.mean()) if len(seen) else float("nan")
