"""The demo: its summary says why it stopped, and its false alarms are the Prometheus sensor's
(unknown without a concept in the records, not every boundary)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from rich.console import Console

from streammeta.bench.demo import run_demo
from streammeta.bench.demo_report import detection
from streammeta.config import load_config
from streammeta.metrics.export.prometheus import PrometheusSensor


def _demo(out: Path, **settings: str) -> tuple[dict[str, Any], str]:
    """A short demo on the embedded broker: its summary and what it printed."""
    overrides = {
        "demo.out": str(out),
        "stream.task_length": "100",
        "kafka.session_timeout_ms": "2000",  # a group join waits about half
        **settings,
    }
    console = Console(file=io.StringIO(), width=120)
    run_demo(load_config(env={}, overrides=overrides), console=console)
    return json.loads((out / "summary.json").read_text()), console.file.getvalue()


@pytest.mark.broker
def test_a_short_demo_says_why_it_stopped_and_counts_no_false_alarms(tmp_path: Path) -> None:
    summary, printed = _demo(
        tmp_path, **{"demo.records": "600", "demo.bad_every": "200", "demo.duration": "300"}
    )
    assert summary["stopped"] == "demo.records reached (600)"
    assert "stopped: demo.records reached (600)" in printed
    assert summary["tasks"] >= 5  # boundaries exactly at the switches: none is a false alarm
    assert summary["detection"] == {
        "false_alarms": 0,
        "false_alarms_per_10k": 0.0,
        "switches_missed": 0,
    }
    assert summary["adaptation"]["meta"]["false_alarms_per_10k"] == 0.0
    assert summary["adaptation"]["baseline"]["false_alarms_per_10k"] == 0.0


@pytest.mark.broker
def test_a_demo_past_its_duration_says_so_with_the_records_unread(tmp_path: Path) -> None:
    summary, printed = _demo(
        tmp_path, **{"demo.duration": "3", "stream.records": "30000", "demo.bad_every": "0"}
    )
    assert summary["stopped"].startswith("duration reached (3 s) with ")
    assert summary["stopped"].endswith(" records still unread")
    assert f"stopped: {summary['stopped']}" in printed
    assert "left of 3 s" in printed  # the live status shows the time elapsed and left


def _service(records: int, knows_concept: bool) -> Any:
    return SimpleNamespace(pipeline=SimpleNamespace(records=records, knows_concept=knows_concept))


def test_false_alarms_are_the_sensors_count_and_unknown_without_a_concept() -> None:
    sensor = PrometheusSensor(CollectorRegistry())
    sensor.metrics.false_alarms.inc(3)
    sensor.metrics.missed.inc(1)
    assert detection(_service(1000, True), sensor) == {
        "false_alarms": 3,
        "false_alarms_per_10k": 30.0,
        "switches_missed": 1,
    }
    assert detection(_service(1000, False), sensor) == {
        "false_alarms": None,
        "false_alarms_per_10k": None,
        "switches_missed": None,
    }


@pytest.mark.broker
def test_a_demo_with_labels_that_come_later_joins_them(tmp_path: Path) -> None:
    summary, printed = _demo(
        tmp_path,
        **{"demo.records": "800", "demo.bad_every": "0", "demo.label_delay": "50",
           "demo.duration": "300"},
    )  # fmt: skip
    late = summary["late_labels"]
    assert late["labels_joined"] >= 300 and late["labels_expired"] == 0
    assert "Labels 50 records after their records" in printed
    assert not summary["service"]["dead_letters"]
