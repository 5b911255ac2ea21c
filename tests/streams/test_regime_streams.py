"""The regime streams: recurring concepts that really repeat their labelling function, a stream
that never drifts, and switches at random records (the contract in test_streams_contract covers
the rest)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from river.datasets import synth

from streammeta.bench.adaptation import AdaptationPlan
from streammeta.streams import make_stream
from streammeta.streams.raw import FriedmanStream
from streammeta.streams.regimes import (
    NoDriftStream,
    SinusoidRecurringStream,
    StaggerRecurringStream,
    SwitchingSinusoidStream,
)


@pytest.mark.parametrize(
    ("name", "cls", "length"),
    [
        ("stagger_recurring", StaggerRecurringStream, 1000),
        ("sinusoid_recurring", SinusoidRecurringStream, 500),
        ("no_drift", NoDriftStream, 2500),
        ("switching_sinusoid", SwitchingSinusoidStream, 10),
    ],
)
def test_registered(name: str, cls: type, length: int) -> None:
    stream = make_stream(name, seed=2)
    assert type(stream) is cls and stream.task_length == length and stream.known_switches
    assert stream.seed == 2 and len(stream.take(3)) == 3


def _table(x: np.ndarray, y: np.ndarray) -> dict[tuple[int, ...], int]:
    """The label of every object seen; fails if one object got two labels."""
    table: dict[tuple[int, ...], set[int]] = {}
    for xi, yi in zip(x.astype(int).tolist(), y.tolist(), strict=True):
        table.setdefault(tuple(xi), set()).add(yi)
    assert all(len(labels) == 1 for labels in table.values())
    return {k: v.pop() for k, v in table.items()}


def test_stagger_rules_are_rivers() -> None:
    for concept in range(3):
        river = synth.STAGGER(classification_function=concept, seed=concept)
        rows = list(itertools.islice(river, 300))
        x = np.array([[r["size"], r["color"], r["shape"]] for r, _ in rows], dtype=np.float32)
        y = np.array([int(label) for _, label in rows])
        np.testing.assert_array_equal(StaggerRecurringStream.label(concept, x), y)


def test_stagger_cycles_its_three_rules() -> None:
    stream = StaggerRecurringStream(seed=4)
    chunk = stream.take(9 * 1000)
    assert chunk.x.shape == (9000, 3) and chunk.x.dtype == np.float32
    assert chunk.y.dtype == np.int64 and set(np.unique(chunk.x).tolist()) == {0.0, 1.0, 2.0}
    assert chunk.switches.tolist() == list(range(0, 9000, 1000))
    assert [stream.concept_of(t) for t in range(9)] == [0, 1, 2] * 3
    concepts = np.array([stream.concept_of(t) for t in chunk.task.tolist()])
    np.testing.assert_array_equal(chunk.y, stream.label(concepts, chunk.x))
    tables = [_table(chunk.x[chunk.task == t], chunk.y[chunk.task == t]) for t in range(9)]
    assert all(len(table) == 27 for table in tables)  # every object, in every task
    for t in range(6):
        assert tables[t] == tables[t + 3]  # the same rule comes back
        assert tables[t] != tables[t + 1]
    positives = [chunk.y[chunk.task % 3 == c].mean() for c in range(3)]
    np.testing.assert_allclose(positives, [1 / 9, 5 / 9, 2 / 3], atol=0.03)


def test_stagger_depends_on_the_seed_alone() -> None:
    a, b = StaggerRecurringStream(seed=1), StaggerRecurringStream(seed=1)
    whole = a.take(2500)
    parts = [b.take(n) for n in (999, 2, 1499)]
    np.testing.assert_array_equal(whole.x, np.concatenate([p.x for p in parts]))
    np.testing.assert_array_equal(whole.y, np.concatenate([p.y for p in parts]))
    assert not np.array_equal(whole.x, StaggerRecurringStream(seed=2).take(2500).x)


def _fit_sinusoid(u: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Least-squares amplitude and phase (in [0, 2 pi)) of ``z = A sin(u + phi)``."""
    (a, b), *_ = np.linalg.lstsq(np.stack([np.sin(u), np.cos(u)], axis=1), z, rcond=None)
    return float(np.hypot(a, b)), float(np.arctan2(b, a) % (2 * np.pi))


def test_sinusoid_recurring_cycles_four_sinusoids_in_raw_units() -> None:
    stream = SinusoidRecurringStream(seed=3)
    chunk = stream.take(12 * 500)
    assert chunk.x.shape == (6000, 1) and chunk.x.dtype == chunk.y.dtype == np.float32
    assert chunk.x.min() < -490 and chunk.x.max() > 490 and np.abs(chunk.x).max() <= 500
    assert chunk.y.min() >= 100 and chunk.y.max() <= 300
    assert chunk.switches.tolist() == list(range(0, 6000, 500))
    assert [stream.concept_of(t) for t in range(6)] == [0, 1, 2, 3, 0, 1]
    params = [stream.params(c) for c in range(4)]
    assert len(set(params)) == 4
    assert all(0.1 <= a <= 5 and 0 <= phi <= np.pi for a, phi in params)
    assert params == [SinusoidRecurringStream(seed=3).params(c) for c in range(4)]
    assert params != [SinusoidRecurringStream(seed=4).params(c) for c in range(4)]
    fits = []
    for t in range(12):
        mine = chunk.task == t
        u, y = chunk.x[mine, 0].astype(np.float64) / 100, chunk.y[mine].astype(np.float64)
        amp, phase = params[t % 4]
        np.testing.assert_allclose(y, 200 + 20 * amp * np.sin(u + phase), atol=1e-3)
        fits.append(_fit_sinusoid(u, (y - 200) / 20))
        np.testing.assert_allclose(fits[-1], params[t % 4], atol=1e-4)
    for t in range(8):
        np.testing.assert_allclose(fits[t], fits[t + 4], atol=1e-4)  # the concept comes back
        assert not np.allclose(fits[t], fits[t + 1], atol=1e-2)


def test_no_drift_is_friedmans_first_task_forever() -> None:
    stream = NoDriftStream(seed=5)
    chunk = stream.take(60_000)
    assert chunk.switches.tolist() == [0] and not chunk.task.any()
    assert chunk.task.dtype == np.int64 and chunk.x.shape == (60_000, 10)
    assert stream.take(100).switches.tolist() == [0]  # later reads: still task 0
    assert [stream.concept_of(t) for t in range(3)] == [0, 0, 0]
    assert {r["task"] for r in NoDriftStream(seed=5).records(5000)} == {0}
    friedman = FriedmanStream(seed=5).take(2500)  # its first task: identical records
    np.testing.assert_array_equal(chunk.x[:2500], friedman.x)
    np.testing.assert_array_equal(chunk.y[:2500], friedman.y)
    # long after friedman's first task the targets still follow its roles, with noise 50
    late = slice(50_000, 60_000)
    u = chunk.x[late].astype(np.float64) / stream.scale - stream.shift
    a, b, c, d, e = u[:, stream.roles(0)].T
    f = 10 * np.sin(np.pi * a * b) + 20 * (c - 0.5) ** 2 + 10 * d + 5 * e
    residual = chunk.y[late] - (1000 + 50 * f)
    assert abs(residual.mean()) < 3 and 47 < residual.std() < 53


def test_no_drift_fills_the_adaptation_budget_with_one_task() -> None:
    # the nominal task length sets the budget: 24 tasks of 2,500 records (60,000), warm-up 4
    assert AdaptationPlan().budget("no_drift", NoDriftStream.default_task_length) == (24, 4)
    stream = NoDriftStream(task_length=700)
    assert stream.task_length == 700 and stream.take(7000).switches.tolist() == [0]


def test_switching_sinusoid_switches_with_hazard_one_tenth() -> None:
    stream = SwitchingSinusoidStream(seed=6)
    assert stream.hazard == pytest.approx(0.1)
    chunk = stream.take(100_000)
    switches = chunk.switches
    assert switches[0] == 0 and chunk.task[0] == 0
    np.testing.assert_array_equal(np.diff(chunk.task), (np.diff(chunk.task) > 0).astype(int))
    assert 9_700 < len(switches) - 1 < 10_300  # 0.1 of 99,999 records, +- 3 sd
    lengths = np.diff(np.append(switches, len(chunk)))
    assert 9.7 < lengths.mean() < 10.3 and lengths.max() > 60
    assert 0.09 < np.mean(lengths == 1) < 0.11  # geometric: P(length 1) = hazard
    rare = SwitchingSinusoidStream(task_length=50, seed=6).take(100_000)
    assert 1_850 < len(rare.switches) < 2_150  # hazard 1/50
    every = SwitchingSinusoidStream(task_length=1, seed=6)  # hazard 1: all but the first open
    assert every.take(1).task.tolist() == [0] and every.take(4).task.tolist() == [1, 2, 3, 4]


def test_switching_sinusoid_tasks_are_fresh_sinusoids() -> None:
    stream = SwitchingSinusoidStream(seed=7)
    chunk = stream.take(3000)
    assert chunk.x.shape == (3000, 1) and chunk.x.dtype == chunk.y.dtype == np.float32
    assert -5 <= chunk.x.min() < -4.9 and 4.9 < chunk.x.max() <= 5
    assert [stream.concept_of(t) for t in range(3)] == [0, 1, 2]
    x = chunk.x[:, 0].astype(np.float64)
    params = [stream.params(t) for t in range(int(chunk.task[-1]) + 1)]
    amp, phase = np.array(params)[chunk.task].T
    np.testing.assert_allclose(chunk.y, amp * np.sin(x + phase), atol=1e-5)
    assert all(0.1 <= a <= 5 and 0 <= phi <= np.pi for a, phi in params)
    assert all(p != q for p, q in itertools.pairwise(params))
    records = list(SwitchingSinusoidStream(seed=7).records(3000))
    assert [r["task"] for r in records] == chunk.task.tolist()


def test_switching_sinusoid_reads_are_contiguous() -> None:
    whole = SwitchingSinusoidStream(seed=8).take(200)
    halves = SwitchingSinusoidStream(seed=8)
    ones = SwitchingSinusoidStream(seed=8)
    for parts in ([halves.take(100), halves.take(100)], [ones.take(1) for _ in range(200)]):
        for field in ("x", "y", "task"):
            joined = np.concatenate([getattr(p, field) for p in parts])
            np.testing.assert_array_equal(getattr(whole, field), joined, err_msg=field)
    assert halves.take(0).task.tolist() == []
    other = SwitchingSinusoidStream(seed=9).take(200)
    assert not np.array_equal(whole.task, other.task) and not np.array_equal(whole.x, other.x)
