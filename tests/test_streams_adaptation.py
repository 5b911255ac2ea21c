"""The sinusoid stream (streammeta.streams.sinusoid), the adaptation figures
(streammeta.metrics.recovery) and the prequential runner (streammeta.runtime.prequential)."""

import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from streammeta.learn.base import Learner
from streammeta.metrics.recovery import loss_curve, positions, recovery_samples, window_mean
from streammeta.runtime.prequential import run_prequential
from streammeta.segment.base import Segmenter
from streammeta.streams import make_stream
from streammeta.streams.sinusoid import SinusoidStream

# --- sinusoid stream -----------------------------------------------------------------------


def test_same_seed_same_records() -> None:
    a = SinusoidStream(task_length=7, seed=3).take(50)
    b = SinusoidStream(task_length=7, seed=3).take(50)
    c = SinusoidStream(task_length=7, seed=4).take(50)
    for name in ("x", "y", "task"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert not np.array_equal(a.x, c.x) and not np.array_equal(a.y, c.y)
    assert a.x.shape == (50, 1) and a.x.dtype == np.float32 and a.y.dtype == np.float32
    assert np.array_equal(a.task, np.arange(50) // 7)


@pytest.mark.parametrize(
    ("task_length", "pieces"),
    [
        (100, (20, 30, 50)),  # all within the first task
        (3, (2, 5)),
        (10, (10, 25, 15)),
    ],
)
def test_reading_in_pieces_equals_reading_at_once(task_length: int, pieces: tuple[int]) -> None:
    whole = SinusoidStream(task_length=task_length, seed=0).take(sum(pieces))
    stream = SinusoidStream(task_length=task_length, seed=0)
    parts = [stream.take(n) for n in pieces]
    assert np.array_equal(np.concatenate([p.task for p in parts]), whole.task)
    assert np.array_equal(np.concatenate([p.x for p in parts]), whole.x)
    assert np.array_equal(np.concatenate([p.y for p in parts]), whole.y)


def test_records_are_take_in_record_form() -> None:
    chunk = SinusoidStream(task_length=4, seed=1).take(10)
    records = list(SinusoidStream(task_length=4, seed=1).records(10, batch=16))
    assert [r["task"] for r in records] == chunk.task.tolist()
    assert [r["x"] for r in records] == chunk.x.tolist()
    assert [r["y"] for r in records] == chunk.y.tolist()


def _fit_sinusoid(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least squares y = a sin x + b cos x = A sin(x + phi): (A, phi, max residual)."""
    design = np.stack([np.sin(x), np.cos(x)], axis=1).astype(np.float64)
    (a, b), *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    residual = float(np.abs(design @ np.array([a, b]) - y).max())
    return math.hypot(a, b), math.atan2(b, a), residual


@pytest.mark.parametrize(
    ("amplitude", "phase"), [((0.1, 5.0), (0.0, math.pi)), ((1.0, 2.0), (0.5, 1.0))]
)
def test_amplitudes_and_phases_are_in_range(
    amplitude: tuple[float, float], phase: tuple[float, float]
) -> None:
    stream = SinusoidStream(task_length=20, seed=0, amplitude=amplitude, phase=phase)
    chunk = stream.take(200 * 20)
    assert chunk.x.min() >= -5.0 and chunk.x.max() <= 5.0
    fits = np.array(
        [_fit_sinusoid(chunk.x[chunk.task == t, 0], chunk.y[chunk.task == t]) for t in range(200)]
    )
    amps, phases, residuals = fits.T
    assert residuals.max() < 1e-4  # every task is exactly one sinusoid
    eps = 1e-4
    assert amplitude[0] - eps <= amps.min() and amps.max() <= amplitude[1] + eps
    assert phase[0] - eps <= phases.min() and phases.max() <= phase[1] + eps
    # and they fill the range: 200 uniform draws leave no gap of 10% at either end
    for values, (lo, hi) in ((amps, amplitude), (phases, phase)):
        assert values.min() < lo + 0.1 * (hi - lo) and values.max() > hi - 0.1 * (hi - lo)


def test_stream_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="task_length=0"):
        SinusoidStream(task_length=0)
    with pytest.raises(ValueError, match="'sinusoid'"):
        make_stream("omniglot")
    assert make_stream("sinusoid", task_length=5, seed=2).task_length == 5


def test_switches() -> None:
    chunk = SinusoidStream(task_length=3, seed=0).take(8)
    assert chunk.switches.tolist() == [0, 3, 6]
    assert len(chunk) == 8


# --- adaptation figures on hand-computed examples ------------------------------------------


def test_positions() -> None:
    assert positions(np.array([3, 3, 4, 4, 4, 7])).tolist() == [0, 1, 0, 1, 2, 0]
    # a task ordinal that comes back is a new boundary all the same
    assert positions(np.array([1, 1, 2, 1])).tolist() == [0, 1, 0, 0]


# positions:           0  1  2  0  1  2  3  0    1    2  3  0  1
_TASK = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3])
_LOSS = np.array([5, 5, 5, 8, 4, 2, 2, 6, np.nan, 3, 1, 9, 9], dtype=float)


def test_window_mean() -> None:
    # the first task (no boundary seen) and NaN (unlabelled) losses never count
    assert window_mean(_LOSS, _TASK, 0, 2) == pytest.approx((8 + 4 + 6 + 9 + 9) / 5)
    assert window_mean(_LOSS, _TASK, 0, 1) == pytest.approx((8 + 6 + 9) / 3)
    assert window_mean(_LOSS, _TASK, 1, 3, min_task=2) == pytest.approx((3 + 9) / 2)
    assert window_mean(_LOSS, _TASK, 3, 4) == pytest.approx((2 + 1) / 2)
    assert math.isnan(window_mean(_LOSS, _TASK, 3, 4, min_task=3))  # task 3 has 2 records
    assert math.isnan(window_mean(_LOSS, _TASK, 10, 20))


def test_loss_curve() -> None:
    np.testing.assert_allclose(
        loss_curve(_LOSS, _TASK, 5), [23 / 3, (4 + 9) / 2, (2 + 3) / 2, (2 + 1) / 2, np.nan]
    )
    np.testing.assert_allclose(
        loss_curve(_LOSS, _TASK, 5, min_task=2), [(6 + 9) / 2, 9, 3, 1, np.nan]
    )
    assert loss_curve(_LOSS, _TASK, 2).shape == (2,)


_RTASK = np.array([0] * 4 + [1] * 5 + [2] * 3)
_RLOSS = np.array([2, 2, 2, 2, 10, 6, 2, 2, 2, 9, 9, 9], dtype=float)


def test_recovery_samples() -> None:
    # window 2: level before task 1 = mean(2, 2) = 2, threshold 2.2; rolling means of task 1:
    # 10, (10+6)/2 = 8, (6+2)/2 = 4, 2, 2 -> recovered at the 4th sample. Task 2 never gets
    # below 2.2 (level = mean(2, 2) again): censored at its length, 3.
    samples, censored = recovery_samples(_RLOSS, _RTASK, window=2, tolerance=0.1)
    assert samples.tolist() == [4, 3] and censored.tolist() == [False, True]
    # tolerance 1.0: threshold 4, reached by the rolling mean 4 at the 3rd sample
    samples, censored = recovery_samples(_RLOSS, _RTASK, window=2, tolerance=1.0)
    assert samples.tolist() == [3, 3] and censored.tolist() == [False, True]
    # window 32, longer than the tasks: level is the whole previous task (2, then 22/5 = 4.4)
    # and the rolling mean covers the whole task so far: 10, 8, 6, 5, 4.4 > 2.2 and 9, 9, 9 >
    # 4.84, so both are censored at their lengths
    samples, censored = recovery_samples(_RLOSS, _RTASK, window=32, tolerance=0.1)
    assert samples.tolist() == [5, 3] and censored.tolist() == [True, True]
    # min_task keeps only the later boundaries
    samples, censored = recovery_samples(_RLOSS, _RTASK, window=2, min_task=2)
    assert samples.tolist() == [3] and censored.tolist() == [True]


def test_recovery_samples_skip_unlabelled_records() -> None:
    loss = _RLOSS[:9].copy()
    loss[5] = np.nan  # task 1: 10, (unlabelled), 2, 2, 2 -> the labelled losses recover to 2
    _, censored = recovery_samples(loss, _RTASK[:9], window=2, tolerance=0.1)
    assert censored.tolist() == [False]


# --- the prequential runner ----------------------------------------------------------------


class RecordingLearner(Learner):
    """Predicts the mean of every label learned so far, then learns the batch; logs each call.

    ``x[:, 0]`` carries the record's index in the stream, so the log shows exactly which records
    each ``update`` received.
    """

    name = "recording"

    def __init__(self) -> None:
        # ("begin", records learned so far, 0) or ("update", first record, batch length)
        self.calls: list[tuple[str, int, int]] = []
        self._sum = 0.0
        self._n = 0
        self._out = torch.zeros(0, 1)
        self._loss = torch.zeros(0)

    def begin_task(self) -> None:
        self.calls.append(("begin", self._n, 0))

    def _predict(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        self.calls.append(("predict", int(x[0, 0]), x.shape[0]))
        out = torch.full((x.shape[0], 1), self._sum / self._n if self._n else 0.0)
        loss = (out[:, 0] - y) ** 2 if y is not None else torch.full((x.shape[0],), torch.nan)
        return out, loss

    def _step(self, x: Tensor, y: Tensor | None, labelled: Tensor | None) -> None:
        assert y is not None
        self.calls.append(("update", int(x[0, 0]), x.shape[0]))
        mean = self._sum / self._n if self._n else 0.0
        self._out = torch.full((x.shape[0], 1), mean)  # predict first ...
        self._loss = (self._out[:, 0] - y) ** 2
        self._sum += float(y.sum())  # ... then learn
        self._n += x.shape[0]

    def snapshot(self) -> dict[str, Any]:
        return {"sum": self._sum, "n": self._n}

    def restore(self, state: dict[str, Any]) -> None:
        self._sum, self._n = float(state["sum"]), int(state["n"])


@pytest.mark.parametrize("first_task_is_new", [False, True])
def test_run_prequential_splits_batches_at_task_switches(first_task_is_new: bool) -> None:
    task = np.array([0] * 7 + [1] * 10 + [2] * 3)
    x = np.arange(20, dtype=np.float32)[:, None]
    y = np.arange(20, dtype=np.float32) * 2
    learner = RecordingLearner()
    done: list[int] = []
    res = run_prequential(
        learner, x, y, task, 5, on_batch=done.append, first_task_is_new=first_task_is_new
    )
    # batches of 5 start at 0, 5, 10, 15, each predicted whole first; the switches at 7 and
    # 17 split the learning of the 2nd and 4th
    expected = [
        ("predict", 0, 5),
        ("update", 0, 5),
        ("predict", 5, 5),
        ("update", 5, 2),
        ("begin", 7, 0),  # exactly at the record that opens task 1
        ("update", 7, 3),
        ("predict", 10, 5),
        ("update", 10, 5),
        ("predict", 15, 5),
        ("update", 15, 2),
        ("begin", 17, 0),
        ("update", 17, 3),
    ]
    if first_task_is_new:
        expected.insert(1, ("begin", 0, 0))
    assert learner.calls == expected
    assert done == [5, 10, 15, 20]
    # every record is predicted from the labels of the earlier batches only
    y_hat = np.concatenate(
        [np.full(5, y[:s].mean() if s else 0.0, dtype=np.float32) for s in range(0, 20, 5)]
    )
    np.testing.assert_allclose(res.y_hat, y_hat, rtol=1e-6)
    np.testing.assert_allclose(res.loss, (y_hat - y) ** 2, rtol=1e-6)
    assert res.task is task and res.seconds >= 0.0


def test_run_prequential_on_an_empty_stream() -> None:
    learner = RecordingLearner()
    empty = np.zeros(0, dtype=np.float32)
    res = run_prequential(learner, empty[:, None], empty, np.zeros(0, dtype=np.int64), 4)
    assert learner.calls == [] and res.loss.shape == (0,) and res.y_hat.shape == (0,)


def test_run_prequential_with_a_segmenter_predicts_then_segments_then_learns() -> None:
    """With a segmenter, each batch is predicted first; the segmenter reads those losses and
    the learner learns the batch with the boundary it found, at the found record."""

    class JumpAt7(Segmenter):
        def _observe(self, value: float) -> bool:
            return value > 100.0  # y jumps to 2*idx at record 7 below: a loss far above 100

    task = np.zeros(12, dtype=np.int64)
    x = np.arange(12, dtype=np.float32)[:, None]
    y = np.where(np.arange(12) < 7, 0.0, 50.0).astype(np.float32)
    learner = RecordingLearner()
    # at record 10 the loss is still high, but the new task is 3 records old: gated (min 5)
    res = run_prequential(learner, x, y, task, 5, segmenter=JumpAt7(min_task_length=5))
    assert learner.calls == [
        ("predict", 0, 5),
        ("update", 0, 5),
        ("predict", 5, 5),
        ("update", 5, 2),
        ("begin", 7, 0),
        ("update", 7, 3),
        ("predict", 10, 2),
        ("update", 10, 2),
    ]
    assert res.boundaries.tolist() == [7]
    # the reported loss of record 7 is the first prediction's (mean of labels 0..4 = 0)
    assert res.loss[7] == 2500.0
