"""The streams in raw units: features on scales and offsets far from 0 and 1, targets that are the
stated formulas of the latent inputs, and tasks whose concepts differ (the contract in
test_streams_contract covers the rest)."""

from __future__ import annotations

import numpy as np
import pytest

from streammeta.streams.raw import SHIFT, FriedmanStream, RawHyperplaneStream
from streammeta.streams.sinusoid import OffsetSinusoidStream, SinusoidStream


@pytest.mark.parametrize(("cls", "decades"), [(FriedmanStream, 6), (RawHyperplaneStream, 8)])
def test_features_are_scaled_and_shifted_latent_inputs(
    cls: type[FriedmanStream], decades: int
) -> None:
    stream = cls(seed=1)
    x = stream.take(5000).x.astype(np.float64)
    low, high = stream.shift * stream.scale, (stream.shift + 1) * stream.scale
    tol = 1e-6 * np.maximum(np.abs(low), np.abs(high))  # float32 rounding
    assert (x >= low - tol).all() and (x <= high + tol).all()
    # every feature fills its range, and the ranges span the stream's decades
    assert (x.max(axis=0) - x.min(axis=0) > 0.99 * stream.scale).all()
    assert np.log10(stream.scale.max() / stream.scale.min()) == pytest.approx(decades)
    assert (np.abs(stream.shift) <= SHIFT).all() and np.abs(stream.shift).max() > 5
    assert not np.array_equal(stream.scale, cls(seed=2).scale)


def _latent(stream: FriedmanStream | RawHyperplaneStream, x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) / stream.scale - stream.shift


def _friedman(u: np.ndarray, roles: np.ndarray) -> np.ndarray:
    a, b, c, d, e = u[:, roles].T
    return 10 * np.sin(np.pi * a * b) + 20 * (c - 0.5) ** 2 + 10 * d + 5 * e


def test_friedman_targets_follow_the_task_roles_with_noise_of_50() -> None:
    stream = FriedmanStream(task_length=2000, seed=0)
    chunk = stream.take(6 * 2000)
    assert stream.task_length == 2000 and FriedmanStream.default_task_length == 2500
    u = _latent(stream, chunk.x)
    residuals = []
    for t in range(6):
        roles = stream.roles(t)
        assert sorted(set(roles.tolist())) == sorted(roles.tolist())  # five distinct features
        assert roles[3] == t % 10 and roles[3] != stream.roles(t + 1)[3]
        mine = chunk.task == t
        residuals.append(chunk.y[mine] - (1000 + 50 * _friedman(u[mine], roles)))
        # under the next task's roles the same records fit far worse
        wrong = chunk.y[mine] - (1000 + 50 * _friedman(u[mine], stream.roles(t + 1)))
        assert wrong.std() > 3 * residuals[-1].std()
    noise = np.concatenate(residuals)
    assert abs(noise.mean()) < 2 and 48 < noise.std() < 52
    assert 1600 < chunk.y.mean() < 1850 and 200 < chunk.y.std() < 300


def test_hyperplane_labels_are_the_task_side_with_five_percent_flipped() -> None:
    stream = RawHyperplaneStream(task_length=1000, seed=3)
    chunk = stream.take(20 * 1000)
    u = _latent(stream, chunk.x)
    side = np.concatenate(
        [(u[chunk.task == t] - 0.5) @ stream.normal(t) > 0 for t in range(20)]
    ).astype(np.int64)
    assert 0.04 < np.mean(side != chunk.y) < 0.06
    assert 0.48 < chunk.y.mean() < 0.52
    # consecutive hyperplanes label the same records differently
    for t in range(19):
        mine = u[chunk.task == t] - 0.5
        assert np.mean((mine @ stream.normal(t) > 0) != (mine @ stream.normal(t + 1) > 0)) > 0.1


def test_offset_sinusoid_is_the_sinusoid_in_raw_units() -> None:
    plain = SinusoidStream(task_length=30, seed=5).take(300)
    raw = OffsetSinusoidStream(task_length=30, seed=5).take(300)
    np.testing.assert_allclose(raw.x, 100 * plain.x, rtol=1e-6)
    np.testing.assert_allclose(raw.y, 200 + 20 * plain.y, rtol=1e-6)
    assert raw.x.min() < -400 and raw.x.max() > 400 and raw.y.min() >= 100 and raw.y.max() <= 300
