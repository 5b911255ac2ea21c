"""Meta-training on a background thread: serving never waits for it, takes its versions at batch
boundaries, and snapshots hold both the version in use and the one being trained."""

from __future__ import annotations

import gc
import threading

import torch

from streammeta.config import load_config
from streammeta.learn.factory import build_learner
from streammeta.learn.learner import MetaLearner
from streammeta.streams.sinusoid import SinusoidStream
from tests.learn.helpers import same_state


def _learner(**overrides: str) -> MetaLearner:
    cfg = load_config(env={}, overrides={"learner.meta_async": "true", **overrides}).learner
    learner = build_learner(cfg)
    assert isinstance(learner, MetaLearner)
    return learner


def _feed(learner: MetaLearner, batches: int, seed: int = 0) -> None:
    chunk = SinusoidStream(task_length=50, seed=seed).take(10 * batches)
    x, y = torch.from_numpy(chunk.x), torch.from_numpy(chunk.y)
    for i in range(batches):
        b = slice(10 * i, 10 * i + 10)
        new = chunk.task[b.start] != chunk.task[b.start - 1] if i else False
        learner.update(x[b], y[b], boundaries=[0] if new else [])


def test_meta_updates_run_in_the_background_and_are_taken_at_batch_ends() -> None:
    learner = _learner(**{"learner.bank_size": "1"})
    init = {k: v.detach().clone() for k, v in learner.meta.init_params().items()}
    _feed(learner, 60)
    learner.finish_meta_updates()
    updates, seconds = learner.meta_progress
    assert updates > 0 and seconds > 0
    assert learner.model_version == updates  # after waiting, the newest version is in use
    assert not same_state(init, {k: v.detach() for k, v in learner.meta.init_params().items()})


def test_serving_never_waits_for_a_meta_update() -> None:
    """A meta-update that cannot finish holds up nothing: batches are predicted and learned,
    the version in use stays the last published one, and the update lands once it is done."""
    learner = _learner()
    _feed(learner, 20)
    learner.finish_meta_updates()
    release, started = threading.Event(), threading.Event()
    worker = learner.meta_worker
    assert worker is not None
    step = worker.step

    def stuck(*args: object) -> None:
        started.set()
        release.wait()
        step(*args)  # type: ignore[arg-type]

    worker.step = stuck
    version = learner.model_version
    _feed(learner, 5, seed=1)  # asks for an update, which blocks on the worker
    assert started.wait(5.0)
    _feed(learner, 30, seed=2)  # thirty batches while it is stuck
    assert learner.model_version == version
    release.set()
    learner.finish_meta_updates()
    assert learner.model_version == version + 1


def test_a_snapshot_restores_the_version_in_use_and_the_one_in_training() -> None:
    learner = _learner()
    _feed(learner, 40)
    learner.finish_meta_updates()
    state = learner.snapshot()
    assert {"meta_training", "version"} <= set(state)
    twin = _learner()
    twin.restore(state)
    assert twin.model_version == learner.model_version
    assert same_state(twin.snapshot()["meta_training"], state["meta_training"])
    assert same_state(twin.snapshot()["meta"], state["meta"])


def test_an_inline_snapshot_restores_into_a_background_learner() -> None:
    inline = build_learner(load_config(env={}).learner)
    _feed(inline, 30)  # type: ignore[arg-type]
    state = inline.snapshot()
    background = _learner()
    background.restore(state)
    assert background.model_version == inline.model_version
    assert same_state(background.snapshot()["meta_training"], state["meta"])


def test_a_dropped_learner_ends_its_thread() -> None:
    learner = _learner(**{"learner.bank_size": "1"})
    _feed(learner, 20)
    learner.finish_meta_updates()
    thread = learner.meta_worker.thread  # type: ignore[union-attr]
    assert thread is not None and thread.is_alive()
    del learner
    gc.collect()
    thread.join(5.0)
    assert not thread.is_alive()
