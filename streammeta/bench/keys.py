"""The keys benchmark: many keys interleaved on one stream, each with its own concept
(:class:`~streammeta.streams.keyed.KeyedStream`), through the service's pipeline.

On the same records it runs streammeta with per-key state (meta-learning on and off), the same
learner without keys (one state for all), and per-key peers: ``online_adam`` per key (the same
MLP and standardization, Adam on every labelled record from one fixed random initialization)
and river's logistic regression (behind a standard scaler), Hoeffding Adaptive Tree and ARF,
one model per key. Then keys never seen before join: how many of its own records a new key needs
to reach its level. Last, records/s and peak RSS with ``scale_keys`` keys against no keys, each
in a process of its own.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streammeta.config import Config
from streammeta.learn.factory import build_model
from streammeta.learn.keyed import KeyedLearner
from streammeta.learn.learner import MetaLearner
from streammeta.runtime.pipeline import Batch, Pipeline
from streammeta.streams.keyed import KeyedChunk, KeyedStream

__all__ = ["curve_to_level", "run_keys"]

#: micro-batch of every learner
BATCH = 10
#: records of its own a new key's accuracy is averaged over (a rolling window)
SMOOTH = 10

Step = Callable[[KeyedChunk], np.ndarray]  # predict a micro-batch, then learn it


def _config(config: Config, **learner: Any) -> Config:
    fields = {"task": "classification", "n_classes": 2, "n_features": 4, "baseline": "none"}
    return dataclasses.replace(
        config, learner=dataclasses.replace(config.learner, **{**fields, **learner})
    )


def _pipeline(config: Config, *, keyed: bool, **learner: Any) -> Step:
    pipe = Pipeline.from_config(_config(config, max_keys=0 if not keyed else 1024, **learner))

    def step(c: KeyedChunk) -> np.ndarray:
        batch = Batch(c.x, c.y, np.ones(len(c), bool), key=c.key if keyed else None)
        return pipe.process(batch).y_hat

    return step


def _adam_per_key(config: Config) -> Step:
    cfg = _config(config).learner
    learner = MetaLearner(
        build_model(cfg), optimizer="adam", inner_lr=cfg.inner_lr, n_features=cfg.n_features,
        meta_train=False, seed=cfg.seed,
    )  # fmt: skip
    keyed = KeyedLearner(learner, max_keys=1024, step_records=1)

    def step(c: KeyedChunk) -> np.ndarray:
        keyed.update(torch.from_numpy(c.x), torch.from_numpy(c.y), c.key.astype(str).tolist())
        return keyed.prediction.cpu().numpy()

    return step


def _river_per_key(make: Callable[[], Any]) -> Step:
    models: dict[str, Any] = {}

    def step(c: KeyedChunk) -> np.ndarray:
        out = np.zeros(len(c), dtype=np.int64)
        for i, key in enumerate(c.key.tolist()):
            model = models.get(key)
            if model is None:
                model = models[key] = make()
            x = dict(enumerate(c.x[i].tolist()))
            out[i] = int(model.predict_one(x) or 0)
            model.learn_one(x, int(c.y[i]))
        return out

    return step


def _river() -> dict[str, Callable[[], Any]]:
    from river import forest, linear_model, preprocessing, tree

    return {
        "river logistic regression per key": lambda: (
            preprocessing.StandardScaler() | linear_model.LogisticRegression()
        ),
        "river HAT per key": lambda: tree.HoeffdingAdaptiveTreeClassifier(seed=0),
        "river ARF per key": lambda: forest.ARFClassifier(seed=0),
    }


def learners(config: Config) -> dict[str, Callable[[], Step]]:
    """Every learner of the comparison, by name, built on call."""
    return {
        "streammeta, keys": lambda: _pipeline(config, keyed=True),
        "streammeta, keys, meta-learning off": lambda: _pipeline(
            config, keyed=True, meta_train=False
        ),
        "streammeta without keys": lambda: _pipeline(config, keyed=False),
        "online_adam per key": lambda: _adam_per_key(config),
        **{name: partial(_river_per_key, make) for name, make in _river().items()},
    }


def curve_to_level(hits: np.ndarray, keys: np.ndarray, length: int) -> tuple[np.ndarray, int]:
    """The accuracy over new keys by their own record count (0..length-1, a rolling mean over
    ``SMOOTH``) and the first count from which it stays within 5% of its level (the mean over
    the second half).

    >>> hits = np.array(([0.0] * 5 + [1.0] * 25) * 2)
    >>> keys = np.array(["a"] * 30 + ["b"] * 30)
    >>> curve, at = curve_to_level(hits, keys, 30)
    >>> at  # the mean over records 5..14 of a key is the first within 5% of the level
    5
    """
    rank = np.zeros(len(keys), dtype=np.int64)
    seen: dict[str, int] = {}
    for i, key in enumerate(keys.tolist()):
        rank[i] = seen.get(key, 0)
        seen[key] = rank[i] + 1
    curve = np.array([hits[rank == r].mean() for r in range(length)])
    window = min(SMOOTH, len(curve))
    smooth = np.convolve(curve, np.ones(window) / window, mode="valid")
    level = curve[length // 2 :].mean()
    below = np.flatnonzero(smooth < 0.95 * level)
    return curve, int(below[-1] + 1) if len(below) else 0


def run_keys(
    config: Config,
    out: Path,
    *,
    keys: int = 200,
    records: int = 40_000,
    new_keys: int = 50,
    new_records_per_key: int = 100,
    scale_keys: int = 10_000,
    scale_records: int = 20_000,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the comparison, the new keys and the scale test; write ``results.json``."""
    out.mkdir(parents=True, exist_ok=True)
    stream = KeyedStream(keys=keys, seed=seed)
    main = [stream.take(BATCH) for _ in range(records // BATCH)]
    fresh = KeyedStream(keys=new_keys, seed=seed + 1, first_key=keys)
    joining = [fresh.take(BATCH) for _ in range(new_keys * new_records_per_key // BATCH)]
    new_key = np.concatenate([c.key for c in joining]).astype(str)
    rows: dict[str, dict[str, Any]] = {}
    for name, build in learners(config).items():
        step = build()
        start = time.perf_counter()
        hits = np.concatenate([step(c) == c.y for c in main])
        seconds = time.perf_counter() - start
        later = np.concatenate([step(c) == c.y for c in joining]).astype(float)
        curve, at = curve_to_level(later, new_key, new_records_per_key)
        rows[name] = {
            "accuracy": float(hits.mean()),
            "accuracy_second_half": float(hits[len(hits) // 2 :].mean()),
            "records_per_s": len(hits) / seconds,
            "new_key_level": float(curve[new_records_per_key // 2 :].mean()),
            "new_key_records_to_level": at,
            "new_key_curve": curve.round(3).tolist(),
        }
        log(
            f"{name:<40} accuracy {hits.mean():.3f}  {len(hits) / seconds:>8,.0f} records/s  "
            f"new keys: level {rows[name]['new_key_level']:.3f} after {at} records"
        )
    scale = {
        label: _scale_in_child(config, scale_keys, scale_records, keyed=keyed, seed=seed)
        for label, keyed in (("keys", True), ("no keys", False))
    }
    for label, figures in scale.items():
        log(
            f"{scale_keys:,} keys, {label:<8}: {figures['records_per_s']:,.0f} records/s, peak "
            f"RSS {figures['peak_rss_mb']:,.0f} MB, keyed state {figures['state_mb']:,.1f} MB"
        )
    result = {
        "keys": keys,
        "records": records,
        "new_keys": new_keys,
        "new_records_per_key": new_records_per_key,
        "learners": rows,
        "scale": {"keys": scale_keys, "records": scale_records, **scale},
    }
    (out / "results.json").write_text(json.dumps(result, indent=2))
    return result


def _scale_in_child(
    config: Config, keys: int, records: int, *, keyed: bool, seed: int
) -> dict[str, float]:
    """:func:`measure_scale` in a fresh process, so that its peak RSS is its own."""
    cmd = [
        sys.executable, "-c",
        "import json, sys; from streammeta.bench.keys import measure_scale; "
        "from streammeta.config import load_config; "
        f"print(json.dumps(measure_scale(load_config(env={{}}), {keys}, {records}, "
        f"keyed={keyed}, seed={seed})))",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def measure_scale(config: Config, keys: int, records: int, *, keyed: bool, seed: int = 0) -> dict:
    """Records/s (after a warm-up of one record per key), peak RSS and the keyed state's size,
    with ``keys`` keys held at once."""
    torch.set_num_threads(1)
    pipe = Pipeline.from_config(_config(config, max_keys=keys if keyed else 0))
    stream = KeyedStream(keys=keys, seed=seed)
    for _ in range(keys // BATCH):  # every key once, about
        c = stream.take(BATCH)
        pipe.process(Batch(c.x, c.y, np.ones(BATCH, bool), key=c.key if keyed else None))
    chunks = [stream.take(BATCH) for _ in range(records // BATCH)]
    start = time.perf_counter()
    for c in chunks:
        pipe.process(Batch(c.x, c.y, np.ones(BATCH, bool), key=c.key if keyed else None))
    seconds = time.perf_counter() - start
    state = 0.0 if pipe.keys is None else pipe.keys.keyed.store.nbytes / 2**20
    return {
        "records_per_s": records / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "state_mb": state,
        "keys_held": float(pipe.status()["learned"].get("keys_held", 0.0)),
    }
