"""The demo's live status: each batch's losses collected, and the table the console shows (time
elapsed and left, records, lag, tasks, meta-updates, recent loss, recovery, checkpoints); it
stops the service once ``demo.duration`` has passed, and holds why the demo stopped."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from streammeta.config import Config
from streammeta.runtime.pipeline import Step
from streammeta.runtime.service import Service

__all__ = ["DemoStatus"]


class DemoStatus:
    """Collects each batch's losses and renders the live table."""

    def __init__(self, config: Config, console: Any, address: str, metrics: str) -> None:
        self.config = config
        self.console = console
        self.address = address
        self.metrics = metrics
        self.losses: dict[str, list[np.ndarray]] = {"meta": [], "base": []}
        self.tasks: list[np.ndarray] = []
        self.t0 = time.perf_counter()
        self.stopped: str | None = None  # why the demo stopped, once it does
        self._shown = 0.0

    def on_batch(self, live: Any) -> Any:
        duration = self.config.demo.duration

        def hook(service: Service, step: Step | None) -> None:
            if step is not None:
                self.losses["meta"].append(step.loss)
                if step.baseline_loss is not None:
                    self.losses["base"].append(step.baseline_loss)
                self.tasks.append(step.task)
            now = time.perf_counter()
            if now - self._shown > 0.25:
                live.update(self.table(service))
                self._shown = now
            if now - self.t0 >= duration and self.stopped is None:
                unread = sum(service.source.lag().values())
                self.stopped = (
                    f"duration reached ({duration:g} s) with {unread:,} records still unread"
                )
                service.stop()

        return hook

    def table(self, service: Service | None) -> Any:
        from rich.table import Table

        el = time.perf_counter() - self.t0
        t = Table(
            title=f"streammeta demo · {self.config.stream.name} · broker {self.address} · "
            f"metrics {self.metrics}",
            title_justify="left",
        )
        t.add_column("", style="bold")
        t.add_column(self.config.learner.algorithm + "+" + self.config.learner.optimizer,
                     justify="right")  # fmt: skip
        t.add_column(self.config.learner.baseline, justify="right")
        left = max(0.0, self.config.demo.duration - el)
        t.add_row("time", f"{el:,.0f} s, {left:,.0f} s left of {self.config.demo.duration:g} s", "")
        if service is None:
            t.add_row("waiting for the consumer group to form", "", "")
            return t
        st, status = service.stats, service.pipeline.status()
        lag = sum(service.source.lag().values())
        t.add_row("records (dead letters)", f"{st.records:,} ({st.dead:,})", "")
        t.add_row("records/s", f"{st.records / el:,.0f}" if el else "-", "")
        t.add_row("lag", f"{lag:,}", "")
        t.add_row("tasks", f"{status['task'] + 1:,}", "")
        t.add_row("meta-updates", f"{status['model_version']:,}", "")
        t.add_row(
            "loss, last 1k records",
            _recent_loss(self.losses["meta"]),
            _recent_loss(self.losses["base"]),
        )
        base = status.get("baseline", {})
        t.add_row(
            "recovery samples (median)",
            _num(status["meta"]["recovery_samples_median"]),
            _num(base.get("recovery_samples_median")),
        )
        t.add_row("speedup", _num(status.get("speedup")), "")
        t.add_row("checkpoints", f"{st.checkpoints:,}", "")
        return t


def _num(v: float | None) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:,.1f}"


def _recent_loss(losses: list[np.ndarray]) -> str:
    tail = np.concatenate(losses[-50:]) if losses else np.zeros(0)
    tail = tail[np.isfinite(tail)][-1000:]
    return f"{tail.mean():.3f}" if len(tail) else "-"
