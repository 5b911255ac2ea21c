"""River's generators as switching streams: raw features as the generators draw them, and every
switch really changes the concept (the contract in test_streams_contract covers the rest)."""

from __future__ import annotations

import numpy as np
import pytest
from river import linear_model, preprocessing

from streammeta.streams.river_streams import RIVER_STREAMS, RiverSwitchingStream

# the range each generator draws its features from, unscaled (STAGGER's are one-hot)
RANGES = {"sea": (0.0, 10.0), "stagger": (0.0, 1.0), "hyperplane": (0.0, 1.0)}


@pytest.mark.parametrize("kind", RIVER_STREAMS)
def test_features_are_raw(kind: str) -> None:
    stream = RiverSwitchingStream(kind, task_length=250, seed=0)
    chunk = stream.take(1000)
    assert chunk.x.shape == (1000, stream.n_features)
    low, high = RANGES[kind]
    assert chunk.x.min() >= low and chunk.x.max() <= high
    # every feature fills its range: no gap of 5% at either end
    margin = 0.05 * (high - low)
    assert (chunk.x.min(axis=0) < low + margin).all() and (
        chunk.x.max(axis=0) > high - margin
    ).all()
    if kind == "stagger":
        assert set(np.unique(chunk.x).tolist()) == {0.0, 1.0}
        assert (chunk.x.reshape(1000, 3, 3).sum(axis=2) == 1).all()
    assert stream.name == kind and stream.task_length == 250


# accuracy of a logistic regression trained on 1,500 records of a task, on the rest of that
# task and on the next task (seed 0, measured): SEA 0.98 -> 0.92 and 1.00 -> 0.84;
# STAGGER 1.00 -> 0.46, 0.49, 0.12; Hyperplane 0.94 -> 0.80 and 0.92 -> 0.74
@pytest.mark.parametrize("kind", RIVER_STREAMS)
def test_every_switch_changes_the_concept(kind: str) -> None:
    chunk = RiverSwitchingStream(kind, task_length=2000, seed=0).take(6000)
    for t in (0, 1):
        model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
        x, y = chunk.x[chunk.task == t], chunk.y[chunk.task == t]
        for _ in range(3):
            for xi, yi in zip(x[:1500], y[:1500], strict=True):
                model.learn_one(dict(enumerate(xi)), int(yi))

        same = _accuracy(model, x[1500:], y[1500:])
        following = chunk.task == t + 1
        after = _accuracy(model, chunk.x[following][:500], chunk.y[following][:500])
        assert same > 0.85, (kind, t, same)
        assert after < same - 0.03, (kind, t, same, after)


def _accuracy(model: object, xs: np.ndarray, ys: np.ndarray) -> float:
    hits = [model.predict_one(dict(enumerate(xi))) == yi for xi, yi in zip(xs, ys, strict=True)]  # type: ignore[attr-defined]
    return float(np.mean(hits))


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="'sea', 'stagger', 'hyperplane'"):
        RiverSwitchingStream("agrawal")
