"""Drifting streams with known switch points, for the demo, the simulator, the benchmarks and the
tests. Every stream is a :class:`Stream`, read in :class:`StreamChunk` columns or as records in
streammeta's input format; :data:`streammeta.registry.STREAMS` names them all (the choices of
``stream.name``) and :func:`make_stream` builds one by name. Records carry raw values, as users
send them: the learner standardizes online.

>>> make_stream("digits_rotated").task_length
500
>>> make_stream("sea", task_length=5, seed=0).take(7).task.tolist()
[0, 0, 0, 0, 0, 1, 1]
>>> try:
...     make_stream("omniglot")
... except ValueError as exc:
...     print(exc)  # doctest: +ELLIPSIS
stream.name = 'omniglot': must be one of 'sinusoid', 'sea', ...
"""

from __future__ import annotations

from streammeta.registry import STREAMS
from streammeta.streams.base import Stream, StreamChunk

__all__ = ["Stream", "StreamChunk", "make_stream"]


def make_stream(name: str, *, task_length: int | None = None, seed: int = 0) -> Stream:
    """A stream by name (``stream.name`` in the config, one of ``STREAMS.names``);
    ``task_length=None`` means the stream's ``default_task_length``."""
    maker = STREAMS.load(name)
    stream: Stream = maker(task_length=task_length, seed=seed)
    return stream
