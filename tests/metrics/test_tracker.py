"""The adaptation tracker against figures computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streammeta.metrics.tracker import AdaptationTracker


def _feed(
    tracker: AdaptationTracker, loss: np.ndarray, detected: list[int], true: list[int], batch: int
) -> None:
    for start in range(0, len(loss), batch):
        stop = min(start + batch, len(loss))
        tracker.update(
            loss[start:stop],
            boundaries=[d - start for d in detected if start <= d < stop],
            true_switches=[t - start for t in true if start <= t < stop],
        )


def _example() -> tuple[np.ndarray, list[int], list[int]]:
    """Three regimes of 100 records. Each task settles at loss 1.0; after a switch the loss
    is 5.0 for 10 records, then 1.0. One unlabelled record (NaN) sits in the second task."""
    loss = np.ones(300)
    loss[100:110] = 5.0
    loss[200:210] = 5.0
    loss[150] = np.nan
    return loss, [105, 170, 203], [100, 200]


@pytest.mark.parametrize("batch", [1, 7, 300])
def test_figures_match_hand_computation(batch: int) -> None:
    loss, detected, true = _example()
    tracker = AdaptationTracker(window=4, tolerance=0.1, post_window=20)
    _feed(tracker, loss, detected, true, batch)
    tracker.update(np.ones(1), boundaries=[0])  # close the last task
    first, alarm, second = tracker.closed  # the closing boundary opened a fourth, still open
    # detected at 105: the level before is 1.0; losses 5,5,5,5,5 then 1s. The rolling mean of
    # 4 is <= 1.1 once four 1s are in: 5 (at 105..109) + 4 -> 9 labelled samples
    assert (first.record, first.level, first.recovery_samples, first.censored) == (
        105,
        1.0,
        9,
        False,
    )
    assert first.detection_delay == 5
    assert first.post_boundary_loss == pytest.approx((5 * 5 + 15 * 1) / 20)
    # 170 is a false alarm: no switch pending; the loss is already at its level: recovered as
    # soon as the window is full, 4 samples
    assert alarm.detection_delay is None and alarm.recovery_samples == 4
    # detected at 203: 7 records of 5.0 then 1s -> 7 + 4 = 11; delay 3
    assert (second.recovery_samples, second.detection_delay) == (11, 3)
    summary = tracker.summary()
    assert summary["detection_delay_median"] == 4.0
    assert summary["detected_fraction"] == 1.0
    assert summary["false_alarms_per_10k"] == pytest.approx(1e4 * 2 / 301)  # 170 and the close


def test_censored_when_the_task_ends_first_and_missed_switches() -> None:
    tracker = AdaptationTracker(window=2, post_window=50)
    tracker.update(np.ones(10))
    tracker.update(np.full(5, 9.0), boundaries=[0], true_switches=[0])
    tracker.update(np.ones(3), boundaries=[0], true_switches=[1])  # a switch at +1, never found
    tracker.update(np.ones(3), true_switches=[2])  # the next switch: the previous one is missed
    head = tracker.closed[0]
    assert (head.recovery_samples, head.censored) == (5, True)
    assert head.post_boundary_loss == 9.0  # fewer than 50 samples: their mean
    assert tracker.missed == 1


def test_reference_tracker_sets_the_level() -> None:
    """A baseline tracker with the meta-learner as reference recovers to the meta-learner's
    level: a learner that never gets good no longer recovers at once."""
    meta = AdaptationTracker(window=4)
    base = AdaptationTracker(window=4, reference=meta)
    mine = AdaptationTracker(window=4)
    meta.update(np.full(20, 0.1))
    meta.update(np.r_[np.full(5, 3.0), np.full(20, 0.1)], boundaries=[0])
    for t in (base, mine):
        t.update(np.full(20, 3.0))
        t.update(np.full(25, 3.0), boundaries=[0])
    for t in (meta, base, mine):
        t.update(np.ones(1), boundaries=[0])
    assert meta.closed[0].recovery_samples == 9
    assert mine.closed[0].recovery_samples == 4  # its own level: 3.0, "recovered" at once
    assert base.closed[0].censored and base.closed[0].recovery_samples == 25
    assert meta.speedup(base) == pytest.approx(25 / 9)


def test_snapshot_round_trip(tmp_path: object) -> None:
    loss, detected, true = _example()
    live = AdaptationTracker(window=4, post_window=20)
    _feed(live, loss[:150], detected, true, 10)
    path = f"{tmp_path}/t.pt"
    torch.save(live.snapshot(), path)
    restored = AdaptationTracker(window=4, post_window=20)
    restored.restore(torch.load(path, weights_only=True))
    for t in (live, restored):
        t.update(
            loss[150:],
            boundaries=[d - 150 for d in detected if d >= 150],
            true_switches=[s - 150 for s in true if s >= 150],
        )
        t.update(np.ones(1), boundaries=[0])
    assert restored.closed == live.closed and restored.summary() == live.summary()


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="window=0"):
        AdaptationTracker(window=0)
