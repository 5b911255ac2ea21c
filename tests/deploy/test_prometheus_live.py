"""A real Prometheus (Debian's ``prometheus``) scrapes ``streammeta run`` on loopback while a
drifting stream with bad records flows through the embedded broker: every query of the Grafana
dashboard answers with data, and every rule of rules.yml evaluates without error."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar
from urllib.error import URLError

import pytest

from streammeta.bench.crash import start_service
from streammeta.bench.prometheus import PrometheusServer, find_prometheus
from streammeta.config import KafkaConfig
from streammeta.io import ensure_topics, open_sink
from streammeta.io.broker import free_port
from streammeta.io.simulate import encode
from streammeta.streams import make_stream
from tests.deploy.helpers import (
    PROMETHEUS_YML,
    RULES,
    dashboard,
    dashboard_queries,
    load_yaml,
    rules,
    to_promql,
)
from tests.io.conftest import make_config, start_broker

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(
        find_prometheus() is None,
        reason="no prometheus binary (`make prometheus-tools` installs Debian's prometheus)",
    ),
]

TASK_LENGTH = 200  # a concept switch, hence a boundary and a closed task, every 200 records
RATE = 500  # records/s
BATCH = 10  # records per message
BAD = (b"{oops", b'{"x": [1.0, 2.0], "y": 1}', b'{"y": 1}')  # malformed, too few features, no x
BAD_EVERY = 50  # messages
T = TypeVar("T")


def _wait_for(
    what: str, probe: Callable[[], T | None], timeout_s: float, explain: Callable[[], str] = str
) -> T:
    """``probe()``'s first truthy answer, polled every 0.25 s; fails after ``timeout_s`` with
    ``explain()`` (the logs) in the message."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = probe()
        except (URLError, ConnectionError, TimeoutError):
            answer = None
        if answer:
            return answer
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f} s\n{explain()}"
        time.sleep(0.25)


def _publish(cfg: KafkaConfig, stop: threading.Event) -> None:
    """SEA records at ``RATE``, the true concept in ``task`` (explicit boundaries) and
    ``concept`` (detection delay), one message in five of three keys, one in five whose labels
    come in a message of their own, and one bad message every ``BAD_EVERY``, until ``stop``."""
    records = make_stream("sea", task_length=TASK_LENGTH, seed=7).records(1_000_000)
    start = time.monotonic()
    sent = 0
    with open_sink(cfg) as sink:
        for n in range(1_000_000 // BATCH):
            if stop.is_set():
                break
            chunk = [{**r, "concept": r["task"]} for r in islice(records, BATCH)]
            if n % 5 == 1:  # records of three keys, each with its own state
                chunk = [{**r, "key": f"device-{i % 3}"} for i, r in enumerate(chunk)]
            if n % 5 == 2:  # records whose labels come in the next message
                late = [{"id": f"late-{n}-{i}", "y": r.pop("y")} for i, r in enumerate(chunk)]
                chunk = [{**r, "id": label["id"]} for r, label in zip(chunk, late, strict=True)]
            sink.produce(cfg.input_topic, encode(chunk)[0], None)
            if n % 5 == 2:
                sink.produce(cfg.input_topic, encode(late)[0], None)
            if n % BAD_EVERY == 0:
                sink.produce(cfg.input_topic, BAD[(n // BAD_EVERY) % len(BAD)], None)
            sent += BATCH
            ahead = start + sent / RATE - time.monotonic()
            if ahead > 0:
                sink.flush(5.0)
                time.sleep(ahead)
        sink.flush(10.0)


def _config(target: str) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml on ``target``, scraped and evaluated every second."""
    config = load_yaml(PROMETHEUS_YML)
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(RULES)]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "streammeta")
    labels = job["static_configs"][0].get("labels", {})
    job.update(
        scrape_interval="1s",
        scrape_timeout="1s",
        static_configs=[{"targets": [target], "labels": labels}],
    )
    config["scrape_configs"] = [job]
    return dict(config)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[PrometheusServer, Path]]:
    """The broker, the publisher, ``streammeta run`` with its metrics on a free loopback port,
    and Prometheus scraping it; yields Prometheus and the folder of the logs."""
    logs = tmp_path / "logs"
    logs.mkdir()
    metrics_port = free_port()
    with start_broker(logs) as broker:
        cfg = make_config(broker.bootstrap)
        ensure_topics(cfg, [cfg.input_topic, cfg.output_topic, cfg.dlq_topic])
        stop = threading.Event()
        publisher = threading.Thread(target=_publish, args=(cfg, stop), daemon=True)
        publisher.start()
        with (logs / "service.log").open("w") as service_log:
            service = start_service(
                cfg,
                tmp_path / "checkpoints",
                "--metrics-port", str(metrics_port),
                "--metrics.host", "127.0.0.1",
                "--service.checkpoint_seconds", "1",
                "--learner.task", "classification",
                "--learner.n_classes", "2",
                "--learner.n_features", "3",
                log=service_log,
            )  # fmt: skip
        prometheus = PrometheusServer(_config(f"127.0.0.1:{metrics_port}"), tmp_path / "prom")
        try:
            yield prometheus, logs
        finally:
            stop.set()
            prometheus.close()
            service.send_signal(signal.SIGTERM)  # drains, checkpoints, exits
            service.wait(30)
            publisher.join(15)


def test_dashboard_queries_answer_and_rules_evaluate_on_a_scraped_service(
    live: tuple[PrometheusServer, Path],
) -> None:
    prom, logs = live

    def logs_tail() -> str:
        service = (logs / "service.log").read_text(errors="replace")[-3000:]
        return f"--- service\n{service}\n--- prometheus\n{prom.log_tail()}"

    up = _wait_for(
        "the learner scraped", lambda: prom.values('up{job="streammeta"} == 1'), 45, logs_tail
    )
    assert up == [1.0]
    # the scripted stream did what the panels need: closed tasks, meta-updates, checkpoints,
    # dead letters of every planted kind
    for expr in (
        'streammeta_recovery_samples_count{learner="meta"} > 2',
        'streammeta_recovery_samples_count{learner="baseline"} > 2',
        "streammeta_meta_updates_total > 0",
        "streammeta_checkpoints_total > 1",
        "streammeta_detection_delay_records_count > 0",
        'count(streammeta_dead_letters_total{reason=~"malformed_json|feature_count|schema"} > 0)'
        " == 3",
        "count(streammeta_consumer_lag_records) > 0",
        "streammeta_keys_recovery_samples > 0",
        "streammeta_labels_joined_total > 0",
        # scraped for longer than the 5 s the annotation's `offset $__interval` looks back
        'count_over_time(up{job="streammeta"}[1m]) > 8',
    ):
        _wait_for(expr, lambda e=expr: prom.values(e), 45, logs_tail)

    problems = []
    for where, expr in dashboard_queries(dashboard()):
        answer = prom.get("/api/v1/query", query=to_promql(expr))
        if answer["status"] != "success":
            problems.append(f"{where}: {answer.get('error')}: {expr}")
        elif not answer["data"]["result"]:
            problems.append(f"{where}: no data: {to_promql(expr)}")
    assert not problems, "\n".join(problems) + "\n" + logs_tail()

    names = {r.get("alert") or r["record"] for r in rules()}

    def evaluated() -> list[dict[str, Any]] | None:
        groups = prom.get("/api/v1/rules")["data"]["groups"]
        found = [rule for group in groups for rule in group["rules"]]
        done = all(r["health"] != "unknown" for r in found) and len(found) == len(names)
        return found if done else None

    time.sleep(2.5)  # two evaluation intervals with the data above
    found = _wait_for("every rule evaluated", evaluated, 20, logs_tail)
    assert {r["name"] for r in found} == names
    failed = [
        f"{r['name']}: {r['health']}: {r.get('lastError')}" for r in found if r["health"] != "ok"
    ]
    assert not failed, "\n".join(failed)
