"""The service's learning step on in-memory batches: boundaries, outputs, snapshots."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from streammeta.config import load_config
from streammeta.metrics.tracker import AdaptationTracker
from streammeta.runtime.pipeline import Batch, Pipeline
from streammeta.streams import make_stream


def _batches(name: str, n: int, size: int, *, explicit: bool = True) -> list[Batch]:
    chunk = make_stream(name, seed=3).take(n)
    return [
        Batch(
            x=chunk.x[s : s + size],
            y=chunk.y[s : s + size],
            labelled=np.ones(len(chunk.y[s : s + size]), bool),
            task=chunk.task[s : s + size].astype(object) if explicit else None,
        )
        for s in range(0, n, size)
    ]


def _pipeline(**flags: object) -> Pipeline:
    return Pipeline.from_config(load_config(env={}, overrides=flags))


def test_explicit_tasks_cut_the_stream_and_both_learners_are_tracked() -> None:
    torch.manual_seed(0)
    pipe = _pipeline()
    steps = [pipe.process(b) for b in _batches("sinusoid", 1000, 32)]
    boundary = np.concatenate([s.boundary for s in steps])
    assert np.flatnonzero(boundary).tolist() == list(range(100, 1000, 100))
    task = np.concatenate([s.task for s in steps])
    assert task[99] == 0 and task[100] == 1 and task[-1] == 9
    status = pipe.status()
    assert status["records"] == 1000 and status["task"] == 9 and status["model_version"] > 0
    assert status["meta"]["boundaries"] == 8  # the last one is still open
    assert np.isfinite(status["speedup"])
    assert all(s.baseline_loss is not None and np.isfinite(s.baseline_loss).all() for s in steps)


def test_unlabelled_records_are_predicted_and_never_learned_from() -> None:
    pipe = _pipeline(**{"learner.task": "classification", "learner.n_classes": 3,
                        "learner.n_features": 2})  # fmt: skip
    x = np.random.default_rng(0).normal(size=(10, 2)).astype(np.float32)
    y = np.array([0, 1, 2, -1, -1, 1, 0, -1, 2, 1])  # -1: a placeholder, not a class
    step = pipe.process(Batch(x=x, y=np.maximum(y, 0), labelled=y >= 0))
    assert np.isnan(step.loss[y < 0]).all() and np.isfinite(step.loss[y >= 0]).all()
    assert step.proba is not None and np.allclose(step.proba.sum(1), 1, atol=1e-5)
    assert set(step.y_hat.tolist()) <= {0, 1, 2}


def test_snapshot_round_trip_continues_exactly(tmp_path: object) -> None:
    torch.manual_seed(0)
    batches = _batches("stagger", 3000, 50, explicit=False)
    flags = {"learner.task": "classification", "learner.n_classes": 2, "learner.n_features": 9}
    live = _pipeline(**flags)
    for b in batches[:30]:
        live.process(b)
    path = f"{tmp_path}/pipe.pt"
    torch.save(live.snapshot(), path)
    expected = [live.process(b) for b in batches[30:]]
    restored = _pipeline(**flags)
    restored.restore(torch.load(path, weights_only=True))
    for want, b in zip(expected, batches[30:], strict=True):
        got = restored.process(b)
        assert np.array_equal(got.loss, want.loss, equal_nan=True)
        assert np.array_equal(got.task, want.task)
    assert restored.status()["meta"] == pytest.approx(live.status()["meta"], nan_ok=True)


def test_tracker_history_is_bounded() -> None:
    tracker = AdaptationTracker(window=2, history=3)
    for _ in range(10):
        tracker.update(np.ones(5), boundaries=[0])
    assert len(tracker.closed) == 3 and tracker.closed[-1].record == 40
    restored = AdaptationTracker(window=2, history=3)
    restored.restore(tracker.snapshot())
    assert list(restored.closed) == list(tracker.closed)
    with pytest.raises(ValueError, match="history=0"):
        AdaptationTracker(history=0)


def test_a_batch_of_one_record_works() -> None:
    pipe = _pipeline()
    step = pipe.process(_batches("sinusoid", 1, 1)[0])
    assert step.y_hat.shape == (1,) and dataclasses.is_dataclass(step)


def test_the_records_concept_gives_true_switches_for_detection_delay() -> None:
    """Fixed windows of 100 cut at 100, 200, ...; the concept switches 40 records earlier
    (at 60, 160, ...): every switch detected 40 records late, none missed, no false alarm.
    The concept survives a snapshot: a restored pipeline sees no switch at its first batch."""
    pipe = _pipeline(
        **{"segment.detector": "fixed", "segment.window": 100, "segment.min_task_length": 1}
    )
    x = np.zeros((20, 1), np.float32)
    concept = (np.arange(600) + 40) // 100
    for s in range(0, 600, 20):
        pipe.process(
            Batch(
                x,
                np.zeros(20, np.float32),
                np.ones(20, bool),
                None,
                concept[s : s + 20].astype(object),
            )
        )
    assert pipe.knows_concept
    delays = [b.detection_delay for b in pipe.tracker.closed]
    assert delays == [40] * 4 and pipe.tracker.missed == pipe.tracker.false_alarms == 0
    restored = _pipeline(
        **{"segment.detector": "fixed", "segment.window": 100, "segment.min_task_length": 1}
    )
    restored.restore(pipe.snapshot())
    later = np.array([6] * 20 + [None] * 10 + [7] * 190, dtype=object)  # records 600 to 819
    for s in range(0, len(later), 20):
        restored.process(
            Batch(x, np.zeros(20, np.float32), np.ones(20, bool), None, later[s : s + 20])
        )
    # the last concept (6) carried on: no switch at 600; records without one carry it over, so
    # the switch is at 630, found at the cut at 700
    delays = [b.detection_delay for b in restored.tracker.closed]
    assert delays == [40] * 6 + [70]
    assert restored.tracker.missed == 0 and restored.tracker.false_alarms == 1  # the cut at 800


def test_detection_figures_are_unknown_without_the_true_concept() -> None:
    """Without a concept every boundary would count as a false alarm: unknown (NaN), not a rate;
    with it, the tracker's counts stand."""
    pipe = _pipeline()
    for batch in _batches("sinusoid", 400, 32):
        pipe.process(batch)
    status = pipe.status()
    assert status["meta"]["boundaries"] > 0
    for learner in ("meta", "baseline"):
        assert np.isnan(status[learner]["false_alarms_per_10k"])
        assert np.isnan(status[learner]["detected_fraction"])
    told = _pipeline()
    for batch in _batches("sinusoid", 400, 32):
        told.process(dataclasses.replace(batch, concept=batch.task))
    assert told.status()["meta"]["false_alarms_per_10k"] == 0.0
