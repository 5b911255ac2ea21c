"""The resampled dataset streams: records are raw dataset rows seen under the task's concept, and
consecutive concepts always differ."""

from __future__ import annotations

import numpy as np
import pytest
from river import datasets
from scipy import ndimage
from sklearn.datasets import load_digits

from streammeta.streams.datasets import PermutedDigits, PermutedImageSegments, RotatedDigits

DIGITS = load_digits()
PIXELS = DIGITS.data  # raw, 0 to 16


def _rows(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The row of ``table`` that each row of ``x`` equals (up to float32 rounding)."""
    x = x.astype(np.float64)
    distance = (x**2).sum(axis=1)[:, None] + (table**2).sum(axis=1)[None, :] - 2 * x @ table.T
    assert distance.min(axis=1).max() < 1e-6
    return distance.argmin(axis=1)


def test_rotated_digits_are_the_task_angle_rotations() -> None:
    stream = RotatedDigits(task_length=50, seed=0)
    chunk = stream.take(150)
    assert chunk.x.min() >= 0.0 and chunk.x.max() <= 16.0 and chunk.x.max() > 15.0
    for t in range(3):
        images = PIXELS.reshape(-1, 8, 8)
        rotated = ndimage.rotate(images, stream.concept(t), axes=(1, 2), reshape=False, order=1)
        x = chunk.x[chunk.task == t]
        rows = _rows(x, rotated.reshape(-1, 64))
        np.testing.assert_array_equal(chunk.y[chunk.task == t], DIGITS.target[rows])


def test_rotation_angles_walk_in_steps_of_30_to_330_degrees() -> None:
    stream = RotatedDigits(seed=5)
    angles = [stream.concept(t) for t in range(300)]
    assert set(angles) == set(range(0, 360, 30))
    steps = np.diff(angles) % 360
    assert steps.min() >= 30 and steps.max() <= 330
    assert stream.concept(7) == angles[7] == RotatedDigits(seed=5).concept(7)


@pytest.mark.parametrize("cls", [PermutedDigits, PermutedImageSegments])
def test_consecutive_permutations_relabel_every_class(cls: type[PermutedDigits]) -> None:
    stream = cls(seed=2)
    perms = np.array([stream.concept(t) for t in range(200)])
    assert (np.sort(perms, axis=1) == np.arange(stream.n_classes)).all()
    assert not np.any(perms[1:] == perms[:-1])
    # every class takes every label somewhere
    assert all(len(set(perms[:, c].tolist())) == stream.n_classes for c in range(stream.n_classes))


def test_permuted_digits_relabel_dataset_rows() -> None:
    stream = PermutedDigits(task_length=40, seed=1)
    chunk = stream.take(120)
    for t in range(3):
        rows = _rows(chunk.x[chunk.task == t], PIXELS)
        expected = stream.concept(t)[DIGITS.target[rows]]
        np.testing.assert_array_equal(chunk.y[chunk.task == t], expected)


def test_image_segments_raw_with_labels_in_name_order() -> None:
    data = list(datasets.ImageSegments())
    raw = np.array([list(features.values()) for features, _ in data])
    names = sorted({label for _, label in data})
    stream = PermutedImageSegments(task_length=30, seed=4)
    chunk = stream.take(90)
    for t in range(3):
        rows = _rows(chunk.x[chunk.task == t], raw)
        original = np.array([names.index(data[r][1]) for r in rows])
        np.testing.assert_array_equal(chunk.y[chunk.task == t], stream.concept(t)[original])
    assert len(names) == 7 and raw.shape == (2310, 18)


def test_tasks_draw_with_replacement_from_the_whole_dataset() -> None:
    chunk = PermutedDigits(task_length=3000, seed=0).take(3000)
    assert set(np.unique(chunk.x).tolist()) == set(range(17))  # whole raw pixels
    rows = _rows(chunk.x, PIXELS)
    # 3,000 draws from 1,797 rows: about 1,797 * (1 - exp(-3000/1797)) = 1,460 distinct
    assert 1350 < len(set(rows.tolist())) < 1570
