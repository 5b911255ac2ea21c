"""The main job: the whole data path on the embedded default, with live status and a report.

With no ``kafka.bootstrap_servers`` it starts the embedded broker on loopback, creates the
topics, publishes the configured drifting stream from a simulator thread, and runs the learner
service on it (the meta-learner and its shadow baseline on the same records) until
``demo.duration`` seconds, ``demo.records`` records, or Ctrl-C; then it writes a report with
plots. With bootstrap servers it does the same on that cluster.

The live status shows the time elapsed and left; the end says why the demo stopped (duration
reached, with the records still unread; demo.records reached; stream exhausted; Ctrl-C), in
the console and as ``stopped`` in ``summary.json``. The records carry their true concept (the
stream's task), so detection delay, missed switches and false alarms are known; the summary
reads them from the same Prometheus sensor that serves ``/metrics``, so the two agree.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch

from streammeta.bench.streams import make_stream
from streammeta.config import Config, to_dict
from streammeta.io.broker import EmbeddedBroker
from streammeta.io.kafka import ensure_topics, open_sink
from streammeta.io.simulate import publish
from streammeta.metrics.export.prometheus import PrometheusSensor
from streammeta.metrics.export.server import MetricsServer, serve_metrics
from streammeta.metrics.recovery import loss_curve, window_mean
from streammeta.runtime.pipeline import Step
from streammeta.runtime.service import Service, build_service

__all__ = ["detection", "run_demo"]


#: Where the demo serves /metrics when ``metrics.port`` is 0.
DEMO_METRICS_PORT = 9108


def run_demo(config: Config, *, console: Any = None) -> Path:
    """Run until ``demo.duration`` seconds (or ``demo.records``) or Ctrl-C; return the report."""
    from rich.console import Console
    from rich.live import Live

    console = console or Console()
    torch.set_num_threads(1)  # small models: one thread is fastest and leaves a core free
    s, d = config.stream, config.demo
    stream = make_stream(s.name, task_length=s.task_length, seed=s.seed)
    out = Path(d.out)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # a demo starts fresh
    out.mkdir(parents=True, exist_ok=True)
    broker = None
    kafka = config.kafka
    if not kafka.bootstrap_servers:
        broker = EmbeddedBroker(log_path=out / "broker.log").start()
        kafka = dataclasses.replace(kafka, bootstrap_servers=broker.bootstrap)
    config = dataclasses.replace(
        config,
        kafka=kafka,
        learner=dataclasses.replace(
            config.learner,
            task=stream.task,
            n_features=stream.n_features,
            n_classes=stream.n_classes,
        ),
        service=dataclasses.replace(
            config.service, checkpoint_dir=str(out / "checkpoints"), micro_batch=s.batch_size
        ),
    )
    limit = d.records or s.records
    exporter = _serve_metrics(config)
    try:
        ensure_topics(kafka, [kafka.input_topic, kafka.output_topic, kafka.dlq_topic])
        sim = threading.Thread(
            target=_simulate, args=(config, stream, limit), daemon=True, name="simulator"
        )
        sim.start()
        view = _Status(
            config,
            console,
            broker.bootstrap if broker else kafka.bootstrap_servers,
            f"{exporter.url}/metrics",
        )
        with Live(view.table(None), console=console, refresh_per_second=4) as live:
            service = build_service(config, on_batch=view.on_batch(live), sensor=exporter.sensor)
            planted = limit // d.bad_every if d.bad_every else 0
            with _signals_noted(service, view):
                stats = service.run(max_records=limit + planted)
            if view.stopped is None:
                view.stopped = _ran_out(d.records, limit + planted, stats.records + stats.dead)
        console.print(f"\nstopped: {view.stopped}")
        return _report(config, service, view, out, console, exporter.sensor)
    finally:
        exporter.close()
        if broker is not None:
            broker.stop()


def _serve_metrics(config: Config) -> MetricsServer:
    """The demo always serves its metrics: on ``metrics.port``, else on 9108 (in Prometheus'
    usual exporter range); on any free port when that one is taken."""
    port = config.metrics.port or DEMO_METRICS_PORT
    served = serve_metrics(dataclasses.replace(config.metrics, port=port), or_free_port=True)
    assert served is not None  # the port is never 0 here
    return served


def _ran_out(records: int, published: int, taken: int) -> str:
    """Why the service returned by itself, having taken in ``taken`` of the ``published``
    messages (``records``: demo.records, 0 when unset)."""
    if taken < published:
        return f"the service stopped after {taken:,} of {published:,} messages"
    if records:
        return f"demo.records reached ({records:,})"
    return f"stream exhausted (all {published:,} messages published were read)"


@contextmanager
def _signals_noted(service: Service, view: _Status) -> Iterator[None]:
    """The service's SIGINT and SIGTERM handlers, noting the signal as the reason the demo
    stopped; the handlers from before come back afterwards."""
    names = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
    before = {sig: signal.getsignal(sig) for sig in names}
    service.install_signal_handlers()
    for sig, name in names.items():
        signal.signal(sig, _noting(view, name, signal.getsignal(sig)))
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _noting(view: _Status, name: str, handler: Any) -> Callable[[int, FrameType | None], None]:
    def noted(signum: int, frame: FrameType | None) -> None:
        view.stopped = view.stopped or name
        if callable(handler):
            handler(signum, frame)

    return noted


#: What the demo plants every ``demo.bad_every`` records, in turn: too few features, and a
#: string where the features go.
BAD_RECORDS = ({"x": [], "y": 0}, {"x": "not numbers", "y": 0})


def _with_bad(records: Iterator[dict[str, Any]], every: int) -> Iterator[dict[str, Any]]:
    for i, record in enumerate(records, 1):
        yield record
        if every and i % every == 0:
            yield BAD_RECORDS[(i // every) % len(BAD_RECORDS)]


def _with_concept(records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Each record's true task also as its ``concept`` (evaluation only): detection delay,
    missed switches and false alarms become known."""
    for record in records:
        yield {**record, "concept": record["task"]} if "task" in record else record


def _simulate(config: Config, stream: Any, limit: int) -> None:
    """Publish the stream (the simulator's job in a deployment) until ``limit`` records, with
    their true concept and a bad record planted every ``demo.bad_every``."""
    sink = open_sink(config.kafka)
    try:
        records = _with_bad(_with_concept(stream.records(limit)), config.demo.bad_every)
        publish(sink, config.kafka.input_topic, records, batch_size=1)
    finally:
        sink.close()


class _Status:
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


def detection(service: Service, sensor: PrometheusSensor) -> dict[str, Any]:
    """Missed switches and false alarms as Prometheus counts them (its counters, read from the
    sensor): known only when the records carried their true concept, else ``None``."""
    records = service.pipeline.records
    if not service.pipeline.knows_concept:
        return dict.fromkeys(("false_alarms", "false_alarms_per_10k", "switches_missed"))
    value = sensor.registry.get_sample_value
    alarms = value("streammeta_false_alarms_total") or 0.0
    return {
        "false_alarms": int(alarms),
        "false_alarms_per_10k": 1e4 * alarms / records if records else 0.0,
        "switches_missed": int(value("streammeta_switches_missed_total") or 0.0),
    }


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None`` (unknown), so that it is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _report(
    config: Config,
    service: Service,
    view: _Status,
    out: Path,
    console: Any,
    sensor: PrometheusSensor,
) -> Path:
    meta_name = f"{config.learner.algorithm}+{config.learner.optimizer}"
    base_name = config.learner.baseline
    losses, tasks = view.losses, view.tasks
    seconds = time.perf_counter() - view.t0
    learned = service.pipeline.learner.describe()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task = np.concatenate(tasks) if tasks else np.zeros(0, dtype=np.int64)
    k = config.stream.batch_size
    half = int(task[-1]) // 2 if len(task) else 0
    summary: dict[str, Any] = {
        "records": len(task),
        "seconds": seconds,
        "tasks": int(task[-1]) + 1 if len(task) else 0,
        "learners": {},
    }
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    for key, name in (("meta", meta_name), ("base", base_name)):
        if not losses[key]:
            continue
        loss = np.concatenate(losses[key])
        summary["learners"][name] = {
            "prequential_loss": float(np.nanmean(loss)) if len(loss) else None,
            "mse_after_1_step": window_mean(loss, task, k, 2 * k, half) if len(loss) else None,
        }
        if len(loss):
            w = max(1, len(loss) // 200)
            a.plot(np.convolve(loss, np.ones(w) / w, mode="valid"), label=name, lw=1)
            b.plot(loss_curve(loss, task, config.stream.task_length, half), label=name)
    summary["learned_optimizer"] = learned
    summary["stopped"] = view.stopped
    summary["detection"] = detection(service, sensor)
    summary["adaptation"] = service.pipeline.status()  # detection figures null without concept
    summary["service"] = {
        "dead_letters": service.stats.dead_letters,
        "checkpoints": service.stats.checkpoints,
        "predictions": service.stats.predictions,
    }
    summary["config"] = to_dict(config)
    a.set(yscale="log", xlabel="record", ylabel="prequential loss", title="loss over the stream")
    b.set(
        yscale="log",
        xlabel="samples since the boundary",
        ylabel="mean loss",
        title="adaptation after a task switch (second half)",
    )
    for ax in (a, b):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "demo.png", dpi=100)
    plt.close(fig)
    (out / "summary.json").write_text(json.dumps(_finite(summary), indent=2, allow_nan=False))
    alarms = summary["detection"]["false_alarms"]
    lines = [
        "# streammeta demo report\n",
        f"{summary['records']:,} records, {summary['tasks']:,} tasks in {seconds:.1f} s; "
        f"stopped: {summary['stopped']}; false alarms: "
        f"{'unknown (no concept in the records)' if alarms is None else alarms}\n",
        "| learner | prequential loss | MSE after 1 step (second half) |",
        "|---|---:|---:|",
    ]
    for name, row in summary["learners"].items():
        lines.append(f"| {name} | {row['prequential_loss']:.3f} | {row['mse_after_1_step']:.3f} |")
    lines.append("\n![demo](demo.png)\n")
    (out / "report.md").write_text("\n".join(lines))
    console.print("\n".join(lines[2:-1]))
    console.print(f"report: [bold]{(out / 'report.md').resolve()}[/bold]")
    return out / "report.md"
