"""The contract every stream in the registry's ``STREAMS`` keeps: records depend on the seed and
the position alone, chunks and records agree with the declared attributes (and the registry's task
tag), switches lie where ``task_length`` puts them, and every switch changes the concept. An
``IrregularTaskStream`` places its switches itself (test_regime_streams checks where, and its
concepts): here its task ordinals need only be consecutive."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from streammeta.registry import STREAMS
from streammeta.streams import Stream, make_stream
from streammeta.streams.regimes import IrregularTaskStream
from streammeta.streams.sinusoid import SinusoidStream


def test_registry() -> None:
    assert STREAMS.names[0] == "sinusoid" and len(set(STREAMS.names)) == len(STREAMS)
    with pytest.raises(ValueError, match="'omniglot': must be one of 'sinusoid', 'sea'"):
        make_stream("omniglot")
    with pytest.raises(ValueError, match="task_length=0"):
        make_stream("digits_rotated", task_length=0)


@pytest.mark.parametrize("name", STREAMS.names)
def test_attributes(name: str) -> None:
    stream = make_stream(name, seed=1)
    assert isinstance(stream, Stream) and stream.name == name and stream.seed == 1
    assert stream.task_length == type(stream).default_task_length
    assert make_stream(name, task_length=7).task_length == 7
    assert stream.task in ("regression", "classification")
    assert STREAMS.entry(name).tags == {stream.task}  # the registry tags the task it poses
    assert (stream.n_classes == 0) == (stream.task == "regression")
    assert stream.n_classes != 1 and stream.n_features >= 1
    assert isinstance(stream.known_switches, bool)


@pytest.mark.parametrize("name", STREAMS.names)
def test_reproducible_and_independent_of_how_it_is_read(name: str) -> None:
    whole = make_stream(name, task_length=70, seed=3).take(300)
    pieces = make_stream(name, task_length=70, seed=3)
    parts = [pieces.take(n) for n in (33, 0, 100, 1, 69, 97)]
    for field in ("x", "y", "task"):
        joined = np.concatenate([getattr(p, field) for p in parts])
        np.testing.assert_array_equal(getattr(whole, field), joined, err_msg=field)
    other = make_stream(name, task_length=70, seed=4).take(300)
    assert not np.array_equal(whole.x, other.x)


@pytest.mark.parametrize("name", STREAMS.names)
def test_chunks(name: str) -> None:
    stream = make_stream(name, task_length=250, seed=0)
    chunk = stream.take(1000)
    regular = not isinstance(stream, IrregularTaskStream)
    assert len(chunk) == 1000 and chunk.task.dtype == np.int64 and chunk.task[0] == 0
    assert set(np.diff(chunk.task).tolist()) <= {0, 1}
    if regular:
        assert chunk.task.tolist() == (np.arange(1000) // 250).tolist()
    assert chunk.x.shape == (1000, stream.n_features) and chunk.x.dtype == np.float32
    assert np.isfinite(chunk.x).all()
    if stream.task == "regression":
        assert chunk.y.shape == (1000,) and chunk.y.dtype == np.float32
    else:
        assert chunk.y.dtype == np.int64
        assert set(np.unique(chunk.y).tolist()) == set(range(stream.n_classes))
    if stream.known_switches and regular:
        assert chunk.switches.tolist() == [0, 250, 500, 750]
        assert stream.take(500).switches.tolist() == [0, 250]


@pytest.mark.parametrize("name", STREAMS.names)
def test_records_match_chunks(name: str) -> None:
    chunk = make_stream(name, task_length=9, seed=2).take(40)
    stream = make_stream(name, task_length=9, seed=2)
    records = list(stream.records(40, batch=7))
    assert len(records) == 40
    kind = float if stream.task == "regression" else int
    for i, record in enumerate(records):
        assert set(record) == ({"x", "y", "task"} if stream.known_switches else {"x", "y"})
        assert record["x"] == chunk.x[i].tolist() and type(record["y"]) is kind
        assert record["y"] == chunk.y[i].item()
        assert record.get("task", chunk.task[i]) == chunk.task[i]


def test_records_omit_task_where_switches_are_unknown() -> None:
    class Unmarked(SinusoidStream):
        known_switches = False

    assert set(next(Unmarked().records(1))) == {"x", "y"}


# A 5-NN model on standardized features fitted to 400 records of a task scores (accuracy, R^2 for
# regression) better on 200 held-out records of that task than on the next task's, by at least
# this much on average over five switches. The smallest averages measured over seeds 0..9:
# sinusoid and sinusoid_offset 0.59, SEA 0.079, STAGGER 0.58, Hyperplane 0.043, Agrawal 0.17,
# rotated digits 0.65, permuted digits 0.92, image segments 0.84, Friedman 0.65, raw
# hyperplane 0.24, recurring STAGGER 0.57, recurring sinusoid 0.73.
DROP = 0.03


@pytest.mark.parametrize("name", STREAMS.names)
def test_every_switch_changes_the_concept(name: str) -> None:
    stream = make_stream(name, task_length=600, seed=0)
    if isinstance(stream, IrregularTaskStream):
        pytest.skip("tasks of random length or none: test_regime_streams checks the concepts")
    chunk = stream.take(6 * 600)
    knn = KNeighborsRegressor(5) if stream.task == "regression" else KNeighborsClassifier(5)
    model = make_pipeline(StandardScaler(), knn)  # features are raw: scaled on the task's own
    drops = []
    for t in range(5):
        x, y = chunk.x[chunk.task == t], chunk.y[chunk.task == t]
        following = chunk.task == t + 1
        model.fit(x[:400], y[:400])
        same = model.score(x[400:], y[400:])
        drops.append(same - model.score(chunk.x[following][400:], chunk.y[following][400:]))
    assert np.mean(drops) > DROP, drops
