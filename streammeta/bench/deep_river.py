"""deep-river as a benchmark peer: a PyTorch MLP learning one record at a time with Adam behind
river's ``StandardScaler``, run prequentially on the same records as streammeta's learners.

deep-river pins river < 0.26 while streammeta uses river 0.26, so it is never a dependency: it
lives in an overlay directory (deep-river, river 0.25, pandas) that only the peer's own
subprocess puts on its path. :func:`build_overlay` installs it (``python -m
streammeta.bench.deep_river`` does the same and prints the directory); without it
:func:`run_deep_river` returns ``None`` and logs why (:func:`overlay_problem`).

The worker (``_deep_river_worker.py``) reports the loss ``river_models.py`` reports, so the
figures compare with river's models and streammeta's learners.

>>> import numpy as np, tempfile
>>> with tempfile.TemporaryDirectory() as empty:
...     run_deep_river(np.zeros((3, 2)), np.zeros(3), n_classes=2, overlay=Path(empty))
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streammeta.bench.river_models import RiverRun
from streammeta.errors import StreamMetaError

__all__ = [
    "DEEP_RIVER",
    "DEFAULT_OVERLAY",
    "OVERLAY_ENV",
    "DeepRiverError",
    "DeepRiverPeer",
    "build_overlay",
    "overlay_dir",
    "overlay_problem",
    "run_deep_river",
]

log = logging.getLogger(__name__)

#: names the overlay directory; unset, :data:`DEFAULT_OVERLAY` is used
OVERLAY_ENV = "STREAMMETA_DEEP_RIVER"
DEFAULT_OVERLAY = Path("~/.cache/streammeta-peers/deep-river")
#: installed with ``--no-deps``: torch, numpy, scikit-learn come from streammeta's environment
PACKAGES = ("deep-river", "river>=0.25,<0.26", "pandas", "tqdm", "torchviz")
_NEEDS = ("deep_river", "river")
_WORKER = Path(__file__).with_name("_deep_river_worker.py")
_FIX = "run `python -m streammeta.bench.deep_river` (or `make peers`) to install it"


class DeepRiverError(StreamMetaError, RuntimeError):
    """The overlay could not be built, or the peer's process failed or ran past its time."""


def _chosen(env: Mapping[str, str] | None) -> tuple[Path, str]:
    env = os.environ if env is None else env
    if env.get(OVERLAY_ENV):
        return Path(env[OVERLAY_ENV]).expanduser(), f"{OVERLAY_ENV}={env[OVERLAY_ENV]}"
    return DEFAULT_OVERLAY.expanduser(), "the default overlay"


def overlay_problem(
    overlay: Path | None = None, *, env: Mapping[str, str] | None = None
) -> str | None:
    """Why deep-river cannot run from ``overlay`` (``None``: the one :func:`overlay_dir`
    would pick), or ``None`` when it can."""
    path, what = (overlay, "the overlay") if overlay is not None else _chosen(env)
    missing = [name for name in _NEEDS if not (path / name).is_dir()]
    if missing:
        return f"{what} {path} lacks {' and '.join(n + '/' for n in missing)}: {_FIX}"
    return None


def overlay_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """The overlay: ``$STREAMMETA_DEEP_RIVER`` when set, else ``~/.cache/streammeta-peers/
    deep-river``, provided it holds ``deep_river/`` and ``river/``; else ``None``."""
    return None if overlay_problem(env=env) else _chosen(env)[0]


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def build_overlay(target: Path | None = None, *, force: bool = False) -> Path:
    """Install deep-river, river 0.25 and pandas into ``target`` (``None``: the directory
    :func:`overlay_dir` reads), unless it already holds them, and check that deep-river imports
    there. Returns the directory; raises :class:`DeepRiverError` with pip's output on failure."""
    path = target.expanduser() if target is not None else _chosen(None)[0]
    if force or overlay_problem(path):
        path.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade"]
        done = subprocess.run(
            [*pip, "--target", str(path), *PACKAGES], capture_output=True, text=True
        )
        if done.returncode:
            raise DeepRiverError(
                f"pip could not install {' '.join(PACKAGES)} into {path}:\n"
                f"{_tail(done.stderr + done.stdout)}"
            )
    check = "import deep_river.classification, deep_river.regression"
    done = subprocess.run(
        [sys.executable, "-P", "-c", check], env=_env(path), capture_output=True, text=True
    )
    if done.returncode:
        raise DeepRiverError(f"deep-river does not import from {path}:\n{_tail(done.stderr)}")
    return path


def _env(overlay: Path, threads: int = 1) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    n = str(threads)
    return {**env, "PYTHONPATH": str(overlay), "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def _check(x: np.ndarray, y: np.ndarray, n_classes: int, hidden: Sequence[int], lr: float) -> None:
    if x.ndim != 2 or len(x) != len(y) or y.ndim != 1:
        raise ValueError(
            f"x {x.shape}, y {y.shape}: x must be records by features and y one target a record"
        )
    if n_classes < 0 or n_classes == 1:
        raise ValueError(f"n_classes = {n_classes}: must be 0 (regression) or at least 2")
    if not hidden or min(hidden) < 1:
        raise ValueError(f"hidden = {tuple(hidden)}: must be one or more positive widths")
    if not lr > 0:
        raise ValueError(f"lr = {lr}: must be positive")


def run_deep_river(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_classes: int,
    seed: int = 0,
    hidden: Sequence[int] = (40, 40),
    lr: float = 1e-3,
    overlay: Path | None = None,
    timeout_s: float | None = None,
) -> RiverRun | None:
    """Test-then-train deep-river's MLP (``hidden`` widths, ReLU, Adam at ``lr``, cross-entropy
    or, with ``n_classes`` 0, squared error) over the records, one at a time, in a subprocess
    with one torch thread. ``None`` when the overlay (``None``: :func:`overlay_dir`'s) is
    missing; :class:`DeepRiverError` with the tail of its stderr when the subprocess fails or
    runs past ``timeout_s``."""
    _check(x, y, n_classes, hidden, lr)
    problem = overlay_problem(overlay)
    if problem:
        log.warning("deep-river peer skipped: %s", problem)
        return None
    path = overlay if overlay is not None else _chosen(None)[0]
    args = {"n_classes": n_classes, "seed": seed, "hidden": list(hidden), "lr": lr, "threads": 1}
    with tempfile.TemporaryDirectory(prefix="streammeta-deep-river-") as tmp:
        src, dst = Path(tmp, "in.npz"), Path(tmp, "out.npz")
        np.savez(src, x=np.asarray(x, dtype=np.float32), y=y)
        cmd = [sys.executable, "-P", str(_WORKER), str(src), str(dst), json.dumps(args)]
        try:
            done = subprocess.run(
                cmd, env=_env(path), capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired as exc:
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
            raise DeepRiverError(
                f"deep-river ran past timeout_s = {timeout_s} on {len(x)} records:\n{_tail(err)}"
            ) from None
        if done.returncode:
            raise DeepRiverError(
                f"deep-river's process (overlay {path}) exited with {done.returncode}:\n"
                f"{_tail(done.stderr)}"
            )
        with np.load(dst) as out:
            correct = out["correct"] if n_classes else None
            return RiverRun(loss=out["loss"], correct=correct, seconds=float(out["seconds"]))


@dataclass(frozen=True)
class DeepRiverPeer:
    """deep-river's MLP as a benchmark peer (:data:`streammeta.registry.PEERS`' ``deep_river``):
    the learner's ``hidden`` widths, the rest :func:`run_deep_river`'s defaults, the overlay
    :func:`overlay_dir`'s; ``None`` when it is not installed."""

    def run(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        n_classes: int = 0,
        seed: int = 0,
        hidden: Sequence[int] = (40, 40),
    ) -> RiverRun | None:
        return run_deep_river(x, y, n_classes=n_classes, seed=seed, hidden=hidden)


DEEP_RIVER = DeepRiverPeer()


if __name__ == "__main__":
    print(build_overlay())
