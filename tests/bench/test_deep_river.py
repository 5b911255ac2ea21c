"""deep-river as a benchmark peer, in a process of its own: what happens without its overlay,
how the worker's failures come back, and (where the overlay is installed) that it learns."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streammeta.bench import deep_river
from streammeta.bench.deep_river import (
    OVERLAY_ENV,
    DeepRiverError,
    overlay_dir,
    overlay_problem,
    run_deep_river,
)

_X = np.zeros((5, 2), dtype=np.float32)


def _fake_overlay(root: Path, deep_river_init: str = "") -> Path:
    for name in ("deep_river", "river"):
        (root / name).mkdir()
    (root / "deep_river" / "__init__.py").write_text(deep_river_init)
    return root


def test_without_the_overlay_the_peer_is_skipped_saying_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert run_deep_river(_X, np.zeros(5), n_classes=2, overlay=tmp_path) is None
    assert "lacks deep_river/ and river/" in caplog.text
    assert "python -m streammeta.bench.deep_river" in caplog.text
    assert overlay_problem(tmp_path) is not None


def test_the_overlay_comes_from_the_environment_else_the_default(tmp_path: Path) -> None:
    assert overlay_dir({OVERLAY_ENV: str(tmp_path)}) is None
    problem = overlay_problem(env={OVERLAY_ENV: str(tmp_path)})
    assert problem is not None and OVERLAY_ENV in problem
    assert overlay_dir({OVERLAY_ENV: str(_fake_overlay(tmp_path))}) == tmp_path
    default = deep_river.DEFAULT_OVERLAY.expanduser()
    assert overlay_dir({}) in (None, default)


def test_a_failing_worker_raises_with_the_tail_of_its_stderr(tmp_path: Path) -> None:
    overlay = _fake_overlay(tmp_path, "raise ImportError('no deep-river here')\n")
    with pytest.raises(DeepRiverError, match="no deep-river here"):
        run_deep_river(_X, np.zeros(5), n_classes=2, overlay=overlay)


@pytest.mark.parametrize(
    ("x", "y", "kw", "field"),
    [
        (np.zeros(5), np.zeros(5), {}, "records by features"),
        (_X, np.zeros(4), {}, "records by features"),
        (_X, np.zeros(5), {"n_classes": 1}, "n_classes = 1"),
        (_X, np.zeros(5), {"hidden": ()}, "hidden = ()"),
        (_X, np.zeros(5), {"lr": 0.0}, "lr = 0.0"),
    ],
)
def test_bad_arguments_name_the_field(
    x: np.ndarray, y: np.ndarray, kw: dict[str, object], field: str
) -> None:
    args: dict[str, Any] = {"n_classes": 2, **kw}
    with pytest.raises(ValueError, match=re.escape(field)):
        run_deep_river(x, y, **args)


def test_the_worker_imports_nothing_from_streammeta() -> None:
    tree = ast.parse(Path(deep_river._WORKER).read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert names and not [n for n in names if n.split(".")[0] == "streammeta"]


@pytest.fixture(scope="module")
def overlay() -> Path:
    path = overlay_dir()
    if path is None:
        pytest.skip(overlay_problem() or "no deep-river overlay")
    return path


def test_it_learns_a_separable_classification(overlay: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    run = run_deep_river(x, y, n_classes=2, overlay=overlay, timeout_s=120)
    assert run is not None and run.loss.shape == (400,)
    assert run.loss[0] == pytest.approx(np.log(2))  # uniform before any learning
    assert run.correct is not None and run.correct.shape == (400,) and not run.correct[0]
    assert run.correct[-100:].mean() > 0.8
    assert run.loss[-100:].mean() < run.loss[:100].mean()
    assert run.records_per_s > 0


def test_it_keeps_each_label_on_its_own_output(overlay: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(400, 2)).astype(np.float32)
    y = (x[:, 0] > x[:, 1]).astype(np.int64) + 2 * (x[:, 0] > 0.5)  # 4 classes, 3 first seen
    y[0] = 3
    run = run_deep_river(x, y, n_classes=4, overlay=overlay, timeout_s=120)
    assert run is not None and run.loss[0] == pytest.approx(np.log(4))
    assert run.correct is not None and run.correct[-100:].mean() > 0.6


def test_it_learns_a_regression(overlay: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2)).astype(np.float32)
    y = x @ np.array([1.5, -2.0]) + 0.5
    run = run_deep_river(x, y, n_classes=0, overlay=overlay, timeout_s=120)
    assert run is not None and run.correct is None and run.loss.shape == (400,)
    assert run.loss[0] == pytest.approx(y[0] ** 2)  # predicts 0 before any learning
    assert run.loss[-100:].mean() < 0.2 * run.loss[:100].mean()
