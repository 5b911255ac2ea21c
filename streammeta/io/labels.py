"""The classes of a task, both ways: a record's ``y`` -> class index (decoding), a class index ->
what a prediction says (encoding). The one place that knows the configured class names.

``n_classes = 0`` is regression: ``y`` stays a number. With ``names``, a record may give its
class by name (its position is the index) and predictions name the class; without, both use the
index.

>>> labels = Labels(3, ["cat", "dog", "eel"])
>>> labels.codes(["dog", 2, None, "yak"])
[1, 2, None, -1]
>>> labels.named(np.array([2, 0])).tolist()
['eel', 'cat']
>>> Labels(3).named(np.array([2, 0])).tolist()
[2, 0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["Labels"]


class Labels:
    """``n_classes`` (0: regression, else at least 2) and their optional ``names``."""

    def __init__(self, n_classes: int = 0, names: Sequence[str] = ()) -> None:
        if n_classes == 1 or n_classes < 0:
            raise ValueError(f"n_classes={n_classes!r}: must be 0 (regression) or at least 2")
        if names and len(names) != n_classes:
            raise ValueError(
                f"labels={list(names)!r}: need one label per class, n_classes={n_classes}"
            )
        self.n_classes = n_classes
        self.names = tuple(names)
        self._index = {name: i for i, name in enumerate(self.names)}
        self._names = np.asarray(self.names, dtype=object) if self.names else None

    def __repr__(self) -> str:
        return f"Labels({self.n_classes}, {list(self.names)!r})"

    def codes(self, ys: list[Any]) -> list[Any]:
        """``ys`` as sent, each class name replaced by its index (``-1``: not a name); other
        values are left to the numeric checks."""
        if not self.names:
            return ys
        return [self._index.get(v, -1) if type(v) is str else v for v in ys]

    def named(self, values: np.ndarray) -> np.ndarray:
        """Class indices as a prediction carries them: their names when configured, else
        ``values`` as they are (indices, or numbers in regression)."""
        if self._names is None:
            return values
        return self._names[values.astype(np.int64)]

    def expected(self) -> str:
        """What a ``y`` must be, for error messages."""
        if not self.n_classes:
            return "a number"
        names = f" or one of {list(self.names)}" if self.names else ""
        return f"0..{self.n_classes - 1}{names}"
