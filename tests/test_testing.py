"""The in-memory source and sink of streammeta.testing: Kafka's roles, crash markers, planted
delivery failures (the doctest runs a service on them through a crash and a restart)."""

from __future__ import annotations

import pytest

from streammeta.io import DeliveryError, RebalanceListener, Sink, Source
from streammeta.testing import Crash, MemorySink, MemorySource


def test_they_are_the_roles_the_run_loop_takes() -> None:
    assert isinstance(MemorySource("in", [[]]), Source) and isinstance(MemorySink(), Sink)


def test_a_crash_marker_takes_no_offset_fires_once_and_a_restart_resumes_at_the_commit() -> None:
    source = MemorySource("in", [[b"a", b"b", MemorySource.CRASH, b"c"], [b"d"]])
    source.subscribe(["in"], RebalanceListener())
    assert [(m.partition, m.offset, m.value) for m in source.poll(10, 0)] == [
        (0, 0, b"a"),
        (0, 1, b"b"),
        (1, 0, b"d"),
    ]
    source.commit({("in", 0): 1})
    with pytest.raises(Crash, match=r"in\[0\] offset 2"):
        source.poll(10, 0)
    source.close()
    source.subscribe(["in"])  # a new consumer: from the committed offsets
    assert [(m.offset, m.value) for m in source.poll(10, 0)] == [(1, b"b"), (2, b"c"), (0, b"d")]
    assert source.lag() == {("in", 0): 0, ("in", 1): 0}


def test_a_planted_flush_failure_loses_what_was_not_flushed() -> None:
    sink = MemorySink(fail_flushes=1)
    sink.produce("out", b"1")
    with pytest.raises(DeliveryError) as failed:
        sink.flush()
    assert failed.value.failed == 1 and sink.sent == {"out": []}
    sink.produce("out", b"2", b"k", [("h", b"v")])
    sink.flush()
    assert sink.sent == {"out": [(b"2", b"k", [("h", b"v")])]} and sink.flushed == 1
