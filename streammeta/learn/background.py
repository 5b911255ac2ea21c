"""Meta-training off the serving path: meta-updates on a thread of their own.

The worker trains a copy of the meta-parameters (the initialization and the learned optimizer)
on meta-batches it samples from the task buffer, which it shares with the learner under the
trainer's lock, and publishes every new version. The learner asks for a meta-update when one is
due and the worker is idle, never waits for it, and takes the newest published version at the
end of a micro-batch: a micro-batch is predicted and learned with one version throughout, and
``model_version`` is the version in use. Asking while an update runs does nothing; the next
batch boundary asks again.

>>> import torch
>>> from streammeta.learn.learner import MetaLearner
>>> from streammeta.learn.model import MLP, FunctionalModel, Regression
>>> model = FunctionalModel(MLP(1, 1, hidden=(8,)), Regression())
>>> learner = MetaLearner(model, support_size=5, meta_every=5, meta_async=True)
>>> x = torch.linspace(-1, 1, 10)[:, None]
>>> for i in range(40):
...     learner.update(x, (1 + i // 10) * x[:, 0], boundaries=[0] if i % 10 == 0 else [])
>>> learner.finish_meta_updates()  # wait for the one in flight (tests, snapshots)
>>> learner.model_version == learner.meta_progress[0] > 0
True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from torch import Tensor

from streammeta.learn.meta import MetaModel
from streammeta.learn.optim import State
from streammeta.learn.trainer import MetaTrainer

__all__ = ["MetaWorker"]

#: One meta-update of ``meta`` by ``trainer`` on a meta-batch, from the inner state ``start``.
Step = Callable[[MetaModel, MetaTrainer, tuple[Tensor, Tensor], State], None]


class MetaWorker:
    """Runs meta-updates of ``training``, a copy of the learner's meta-parameters, on a daemon
    thread started on the first request. Holds no reference to the learner, so a learner that
    is dropped is collected; :meth:`close` ends the thread (the learner's finalizer calls it)."""

    def __init__(self, training: MetaModel, trainer: MetaTrainer, step: Step) -> None:
        self.training = training  # the copy the worker trains, which ``trainer`` steps
        self.trainer = trainer
        self.step = step
        self.busy = threading.Lock()  # held while an update runs: a snapshot waits for it
        self._wake = threading.Event()
        self._closed = False
        self._start: State | None = None
        self._published: dict[str, Tensor] | None = None
        self.version = 0
        self.thread: threading.Thread | None = None

    def request(self, start: State) -> bool:
        """Ask for one meta-update from the inner optimizer state ``start``; ``False`` (and
        nothing asked) while one is running."""
        if self.busy.locked() or self._wake.is_set():
            return False
        self._start = start
        self.trainer.taken()
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="streammeta-meta", daemon=True)
            self.thread.start()
        self._wake.set()
        return True

    def take(self) -> tuple[int, dict[str, Tensor]] | None:
        """The newest version published since the last call, with its number, or ``None``."""
        with self.trainer.lock:
            published, self._published = self._published, None
            return None if published is None else (self.version, published)

    def wait(self) -> None:
        """Return once no update is asked for or running."""
        while self._wake.is_set() or self.busy.locked():
            time.sleep(0.001)

    def state(self) -> dict[str, Any]:
        """The training copy's parameters (call with :attr:`busy` held)."""
        return self.training.state_dict()

    def load(self, state: dict[str, Any]) -> None:
        """Set the training copy (call with :attr:`busy` held); nothing stays published."""
        self.training.load_state_dict(state)
        self._published = None

    def close(self) -> None:
        """End the thread, once the update it may be running is done (also at interpreter exit:
        a thread still inside torch's autograd then aborts the process)."""
        self._closed = True
        self._wake.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30.0)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._closed:
                return
            with self.busy:
                self._wake.clear()
                batch, start = self.trainer.sample(), self._start
                if batch is None or start is None:
                    continue
                began = time.perf_counter()
                self.step(self.training, self.trainer, batch, start)
                self.trainer.seconds += time.perf_counter() - began
                fresh = {k: v.detach().clone() for k, v in self.training.state_dict().items()}
                with self.trainer.lock:
                    self._published, self.version = fresh, self.trainer.updates
