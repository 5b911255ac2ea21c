"""The learner contract, run over every registry entry: every algorithm with every inner optimizer
(``ALGORITHMS`` x ``INNER_OPTIMIZERS``; an algorithm with a learner of its own once) and every
baseline (``BASELINES``), built from the config as the service builds them.

Each passes the same checks: outputs, losses and predictions of the batch's shape; a snapshot
saved to disk and restored into a fresh learner continues exactly; a snapshot in memory is not
changed by the learner going on; and the snapshot, so the learner's memory, stops growing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from streammeta.config import LearnerConfig, load_config
from streammeta.learn.base import Learner
from streammeta.learn.factory import build_baseline, build_learner
from streammeta.registry import ALGORITHMS, BASELINES, INNER_OPTIMIZERS
from streammeta.runtime.prequential import run_prequential
from streammeta.streams.sinusoid import SinusoidStream
from tests.learn.helpers import same_state

# 12 tasks of 40 records; the snapshot is taken at record 245, mid-task and mid-batch of 10
TASK_LENGTH, SPLIT, END, BATCH = 40, 245, 480, 10


def _cfg(classification: bool, **learner: str) -> LearnerConfig:
    overrides = {
        "learner.device": "cpu",
        "learner.hidden": "8",
        "learner.support_size": "5",
        "learner.meta_batch": "4",
        "learner.buffer_recent": "2",
        "learner.buffer_reservoir": "3",
        "learner.task_max_records": "30",
        "learner.spawn_every": "50",
        "learner.memory_size": "3",
    }
    if classification:
        overrides |= {"learner.task": "classification", "learner.n_classes": "3",
                      "learner.n_features": "2"}  # fmt: skip
    overrides.update({f"learner.{k}": v for k, v in learner.items()})
    return load_config(env={}, overrides=overrides).learner


def _cases() -> dict[str, tuple[Callable[[], Learner], bool]]:
    """Each learner by id: how to build it, and whether it is a classifier."""
    cases: dict[str, tuple[Callable[[], Learner], bool]] = {}
    for algorithm in ALGORITHMS:
        classification = "classification" in algorithm.tags
        optimizers = ["-"] if "learner" in algorithm.tags else INNER_OPTIMIZERS.names
        for optimizer in optimizers:
            settings = {"algorithm": algorithm.name}
            if optimizer != "-":
                settings["optimizer"] = optimizer
            cfg = _cfg(classification, **settings)
            cases[f"{algorithm.name}+{optimizer}"] = (
                lambda cfg=cfg: build_learner(cfg),
                classification,
            )
    for baseline in BASELINES.names:
        cfg = _cfg(False)
        cases[baseline] = (lambda cfg=cfg, b=baseline: build_baseline(b, cfg), False)
    return cases


CASES = _cases()


def _stream(classification: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not classification:
        chunk = SinusoidStream(task_length=TASK_LENGTH, seed=0).take(END)
        return chunk.x, chunk.y, chunk.task
    rng = np.random.default_rng(0)
    task = np.repeat(np.arange(END // TASK_LENGTH), TASK_LENGTH)
    centres = rng.normal(0.0, 3.0, size=(END // TASK_LENGTH, 3, 2))
    y = rng.integers(0, 3, END)
    x = centres[task, y] + rng.normal(0.0, 1.0, size=(END, 2))
    return x.astype(np.float32), y.astype(np.int64), task


def _size(state: object) -> int:
    """Elements of the tensors in a snapshot."""
    if isinstance(state, torch.Tensor):
        return state.numel()
    if isinstance(state, dict):
        return sum(map(_size, state.values()))
    if isinstance(state, list | tuple):
        return sum(map(_size, state))
    return 0


def test_every_entry_is_covered() -> None:
    ids = {name.split("+")[0] for name in CASES}
    assert ids == {*ALGORITHMS.names, *BASELINES.names}


@pytest.mark.parametrize("name", list(CASES))
def test_learner_contract(name: str, tmp_path: Path) -> None:
    make, classification = CASES[name]
    x, y, task = _stream(classification)
    a, b = slice(0, SPLIT), slice(SPLIT, END)
    original = make()

    # shapes: one output row, loss and prediction per record
    original.update(torch.from_numpy(x[:7]), torch.from_numpy(y[:7]))
    n_out = 3 if classification else 1
    assert original.output.shape == (7, n_out)
    assert original.loss.shape == (7,) and original.prediction.shape == (7,)

    sizes: list[int] = []

    def measure(_: int) -> None:
        sizes.append(_size(original.snapshot()))

    run_prequential(original, x[a], y[a], task[a], BATCH, first_task_is_new=True, on_batch=measure)
    snapshot = original.snapshot()
    kept = copy.deepcopy(snapshot)
    torch.save(snapshot, tmp_path / "snapshot.pt")
    seen, sizes = max(sizes), []
    first = run_prequential(original, x[b], y[b], task[b], BATCH, on_batch=measure)
    assert same_state(snapshot, kept)  # independent of the live learner
    assert max(sizes) <= seen  # bounded: six tasks in, it no longer grows

    resumed = make()
    resumed.restore(torch.load(tmp_path / "snapshot.pt", weights_only=True))
    second = run_prequential(resumed, x[b], y[b], task[b], BATCH)
    assert np.array_equal(first.loss, second.loss, equal_nan=True)
    assert np.array_equal(first.y_hat, second.y_hat)
    assert original.model_version == resumed.model_version
    assert np.isfinite(first.loss).all()
