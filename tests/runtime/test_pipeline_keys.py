"""Records with a key in the pipeline: each key learns its own concept, keys are evicted least
recently used first and start again from the initialization, mixed batches answer every record in
order, the keyed state round-trips through snapshots, and the figures reach the status."""

from __future__ import annotations

import numpy as np
import torch

from streammeta.config import load_config
from streammeta.runtime.pipeline import Batch, Pipeline
from streammeta.streams.keyed import KeyedStream

CLASSES = {"learner.task": "classification", "learner.n_classes": 2, "learner.n_features": 4}


def _pipeline(**flags: object) -> Pipeline:
    return Pipeline.from_config(load_config(env={}, overrides={**CLASSES, **flags}))


def _batch(chunk: object, keyed: bool = True) -> Batch:
    x, y, key = chunk.x, chunk.y, chunk.key  # type: ignore[attr-defined]
    return Batch(x=x, y=y, labelled=np.ones(len(y), bool), key=key if keyed else None)


def _opposite(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two keys whose labels are opposite on the same features."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, size=(n, 4)).astype(np.float32)
    key = rng.choice(np.array(["left", "right"], dtype=object), size=n)
    side = (x[:, 0] > 5).astype(np.int64)
    return x, np.where(key == "left", side, 1 - side), key


def test_two_keys_with_opposite_labels_each_learn_their_own() -> None:
    torch.manual_seed(0)
    x, y, key = _opposite(2000)
    accuracy = {}
    for keyed in (True, False):
        pipe = _pipeline()
        hits = []
        for s in range(0, 2000, 10):
            batch = Batch(x=x[s : s + 10], y=y[s : s + 10], labelled=np.ones(10, bool))
            if keyed:
                batch = Batch(batch.x, batch.y, batch.labelled, key=key[s : s + 10])
            hits.append(pipe.process(batch).y_hat == y[s : s + 10])
        accuracy[keyed] = float(np.concatenate(hits)[1000:].mean())
    assert accuracy[True] > 0.9, accuracy
    assert accuracy[False] < 0.65, accuracy  # one state for both: near chance


def test_least_recently_used_key_is_evicted_and_returns_fresh() -> None:
    pipe = _pipeline(**{"learner.max_keys": 3})
    stream = KeyedStream(keys=5, seed=1)
    for _ in range(30):
        pipe.process(_batch(stream.take(10)))
    figures = pipe.status()["learned"]
    assert figures["keys_held"] == 3
    assert figures["keys_evicted"] > 0
    assert pipe.keys is not None
    keyed = pipe.keys.keyed
    init = keyed.store.init()  # what a returning key starts from
    one = Batch(
        x=np.zeros((1, 4), np.float32), y=np.zeros(1, np.int64), labelled=np.zeros(1, bool),
        key=np.array(["never-seen"], dtype=object),
    )  # fmt: skip
    pipe.process(one)
    weights = keyed.weights("never-seen")
    assert weights is not None and all(torch.equal(weights[k], v) for k, v in init.items())


def test_a_mixed_batch_answers_every_record_in_place() -> None:
    pipe = _pipeline()
    stream = KeyedStream(keys=4, seed=2)
    chunk = stream.take(40)
    key = chunk.key.copy()
    key[::3] = None  # every third record carries no key: the shared state
    step = pipe.process(Batch(x=chunk.x, y=chunk.y, labelled=np.ones(40, bool), key=key))
    assert step.y_hat.shape == (40,) and step.proba is not None and step.proba.shape == (40, 2)
    assert np.isfinite(step.loss).all()
    assert pipe.records == 40
    assert pipe.status()["learned"]["keys_held"] == 4


def test_more_distinct_keys_in_a_batch_than_max_keys_are_taken_in_slices() -> None:
    pipe = _pipeline(**{"learner.max_keys": 2})
    step = pipe.process(_batch(KeyedStream(keys=9, seed=3).take(30)))
    assert step.y_hat.shape == (30,)
    assert pipe.status()["learned"]["keys_held"] == 2


def test_keyed_state_round_trips_through_a_snapshot() -> None:
    a, b = _pipeline(), _pipeline()
    stream = KeyedStream(keys=6, seed=4)
    for _ in range(20):
        a.process(_batch(stream.take(10)))
    b.restore(a.snapshot())
    assert b.status()["learned"]["keys_held"] == 6  # before any keyed record reaches it
    nxt = stream.take(10)
    sa, sb = a.process(_batch(nxt)), b.process(_batch(nxt))
    np.testing.assert_array_equal(sa.loss, sb.loss)
    np.testing.assert_array_equal(sa.task, sb.task)


def test_max_keys_zero_only_echoes_keys() -> None:
    pipe = _pipeline(**{"learner.max_keys": 0})
    assert pipe.keys is None
    pipe.process(_batch(KeyedStream(keys=3, seed=5).take(10)))
    assert "keys_held" not in pipe.status()["learned"]
