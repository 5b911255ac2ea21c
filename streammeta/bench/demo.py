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
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from streammeta.bench.demo_report import write_report
from streammeta.bench.demo_status import DemoStatus
from streammeta.config import Config
from streammeta.io.broker import EmbeddedBroker
from streammeta.io.kafka import ensure_topics, open_sink
from streammeta.io.simulate import delay_labels, publish
from streammeta.metrics.export.server import MetricsServer, serve_metrics
from streammeta.runtime.service import Service, build_service
from streammeta.streams import make_stream

__all__ = ["BAD_RECORDS", "DEMO_METRICS_PORT", "run_demo"]


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
        view = DemoStatus(
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
        return write_report(config, service, view, out, console, exporter.sensor)
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
def _signals_noted(service: Service, view: DemoStatus) -> Iterator[None]:
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


def _noting(view: DemoStatus, name: str, handler: Any) -> Callable[[int, FrameType | None], None]:
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
    their true concept, a bad record planted every ``demo.bad_every`` and, with
    ``demo.label_delay``, each label that many records after its record."""
    sink = open_sink(config.kafka)
    try:
        records = _with_concept(stream.records(limit))
        if config.demo.label_delay:
            records = delay_labels(records, config.demo.label_delay)
        records = _with_bad(records, config.demo.bad_every)
        publish(sink, config.kafka.input_topic, records, batch_size=1)
    finally:
        sink.close()
