"""deep-river's MLP run prequentially, in a process of its own (see ``deep_river.py``).

Run by path, with the overlay (deep-river and river 0.25) first on ``PYTHONPATH``::

    python -P _deep_river_worker.py in.npz out.npz '{"n_classes": 2, "seed": 0, ...}'

``in.npz`` holds ``x`` (records by features) and ``y``; ``out.npz`` gets ``loss`` (per record,
before learning from it), ``correct`` (classification only) and ``seconds`` (the loop alone).
The loss is the one ``river_models.py`` reports: cross-entropy of the predicted probabilities
clipped at 1e-7 (uniform before anything is learned), or squared error (0 predicted before
anything is learned).

It imports nothing from streammeta, which would bring river 0.26's code into a process that
runs river 0.25; its imports of torch, river and deep-river wait for :func:`main`, so the
test run's doctest collection can import this module without the overlay.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

import numpy as np

__all__ = ["main"]


def _mlp(n_in: int, hidden: list[int], n_out: int) -> Any:
    import torch

    layers: list[torch.nn.Module] = []
    for width in hidden:
        layers += [torch.nn.Linear(n_in, width), torch.nn.ReLU()]
        n_in = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(n_in, n_out))


def _model(n_features: int, n_classes: int, seed: int, hidden: list[int], lr: float) -> Any:
    import torch
    from deep_river.classification import Classifier
    from deep_river.regression import Regressor
    from river import preprocessing

    torch.manual_seed(seed)  # deep-river seeds only after the module is built
    module = _mlp(n_features, hidden, n_classes or 1)
    if not n_classes:
        reg = Regressor(module=module, loss_fn="mse", optimizer_fn="adam", lr=lr, seed=seed)
        return preprocessing.StandardScaler() | reg
    clf = Classifier(
        module=module,
        loss_fn="cross_entropy",
        optimizer_fn="adam",
        lr=lr,
        seed=seed,
        is_class_incremental=False,
    )
    # deep-river maps a label to its rank among the labels seen so far; knowing every label from
    # the start keeps label k on output k (else the first label seen would take output 0)
    clf.observed_classes.update(range(n_classes))
    return preprocessing.StandardScaler() | clf


def _run(x: np.ndarray, y: np.ndarray, args: dict[str, Any]) -> dict[str, Any]:
    n_classes = int(args["n_classes"])
    model = _model(x.shape[1], n_classes, int(args["seed"]), list(args["hidden"]), args["lr"])
    rows = [dict(enumerate(r)) for r in x.tolist()]
    targets = y.tolist()
    loss = np.empty(len(rows))
    correct = np.zeros(len(rows), dtype=bool)
    uniform = [1.0 / max(n_classes, 1)] * n_classes
    t0 = time.perf_counter()
    for i, (row, target) in enumerate(zip(rows, targets, strict=True)):
        if n_classes:
            target = int(target)
            proba = model.predict_proba_one(row)
            # 0 and 1 come back as False and True when there are two classes; equal keys
            probs = [float(proba.get(k, 0.0)) for k in range(n_classes)] if i else uniform
            loss[i] = -math.log(max(probs[target], 1e-7))
            correct[i] = i > 0 and int(np.argmax(probs)) == target
        else:
            loss[i] = ((model.predict_one(row) if i else 0.0) - target) ** 2
        model.learn_one(row, target)
    out = {"loss": loss, "seconds": np.float64(time.perf_counter() - t0)}
    return {**out, "correct": correct} if n_classes else out


def main(argv: list[str]) -> int:
    """``in.npz out.npz json-args``; args: ``n_classes`` (0: regression), ``seed``,
    ``hidden`` (widths), ``lr``, ``threads``."""
    if len(argv) != 3:
        print(f"usage: {sys.argv[0]} in.npz out.npz json-args", file=sys.stderr)
        return 2
    src, dst, text = argv
    args = json.loads(text)
    import torch

    torch.set_num_threads(int(args.get("threads", 1)))
    with np.load(src) as data:
        x, y = data["x"], data["y"]
    np.savez(dst, **_run(x, y, args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
