"""The scale-out benchmark, on the embedded broker with ``streammeta run``: one stream spread
over four partitions (each task's records on one partition, by message key), learned by

- one instance reading all four partitions,
- two instances in one consumer group sharing their meta-state on ``kafka.meta_topic``,
- two instances in one group that do not share,

each on the same records, with the post-boundary loss (the mean loss over the first
``POST`` records of every task but each partition's first) of the published predictions.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from streammeta.bench.crash import read_topic, start_service
from streammeta.config import KafkaConfig
from streammeta.io import EmbeddedBroker, ensure_topics, open_sink
from streammeta.io.simulate import encode
from streammeta.streams import make_stream

__all__ = ["run_scale_out"]

PARTITIONS = 4
#: records after a task's first that its post-boundary loss averages
POST = 20


def _publish(cfg: KafkaConfig, records: list[dict[str, Any]]) -> None:
    ensure_topics(cfg, [cfg.input_topic], partitions=PARTITIONS)
    ensure_topics(cfg, [cfg.output_topic, cfg.dlq_topic])
    with open_sink(cfg) as sink:
        for rec in records:
            sink.produce(cfg.input_topic, encode([rec])[0], str(rec["concept"]).encode())


def _post_boundary_loss(
    cfg: KafkaConfig, truth: dict[str, int], *, first_tasks: bool = False
) -> tuple[float, int]:
    """Mean over tasks of the mean loss over the first ``POST`` records of each, from the
    published predictions (without the first task of each partition, where nothing was
    meta-learned yet, unless ``first_tasks``); and the predictions' count."""
    rows = [json.loads(m.value or b"{}") for m in read_topic(cfg, cfg.output_topic)]
    by_task: dict[int, list[tuple[int, float]]] = {}
    for p in rows:
        by_task.setdefault(truth[p["id"]], []).append((p["offset"], p["loss"]))
    losses = []
    for task, seen in by_task.items():
        seen.sort()
        if task < PARTITIONS and not first_tasks:  # about each partition's first task
            continue
        losses.append(float(np.mean([loss for _, loss in seen[:POST]])))
    return float(np.mean(losses)), len(rows)


def _records(n: int, task_length: int, seed: int, prefix: str) -> list[dict[str, Any]]:
    stream = make_stream("sinusoid", task_length=task_length, seed=seed)
    recs = [{**r, "concept": r.pop("task")} for r in stream.records(n)]
    for i, r in enumerate(recs):
        r["id"] = f"{prefix}{i}"
    return recs


def _run(
    broker: EmbeddedBroker,
    out: Path,
    recs: list[dict[str, Any]],
    *,
    instances: int,
    meta_topic: str,
    sync_seconds: float,
    client: str,
    first_tasks: bool = False,
) -> dict[str, Any]:
    """Publish ``recs``, learn them with ``instances`` instances of one group (sharing on
    ``meta_topic`` unless empty), and score the published predictions."""
    tag = uuid.uuid4().hex[:8]
    cfg = KafkaConfig(
        bootstrap_servers=broker.bootstrap, client=client, input_topic=f"in-{tag}",
        output_topic=f"out-{tag}", dlq_topic=f"dlq-{tag}", group=f"scale-{tag}",
        session_timeout_ms=6000, meta_topic=meta_topic,
    )  # fmt: skip
    _publish(cfg, recs)
    start = time.monotonic()
    procs = [
        start_service(
            cfg, out / tag / f"instance-{i}", "--idle-exit", "8",
            "--meta.sync_seconds", str(sync_seconds), "--meta.instance", f"{tag}-{i}",
            *(["--kafka.meta_topic", meta_topic] if meta_topic else []),
        )
        for i in range(instances)
    ]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"an instance failed:\n{err[-2000:]}")
    truth = {r["id"]: int(r["concept"]) for r in recs}
    loss, predicted = _post_boundary_loss(cfg, truth, first_tasks=first_tasks)
    return {"post_boundary_loss": loss, "predicted": predicted,
            "seconds": round(time.monotonic() - start, 1)}  # fmt: skip


def run_scale_out(
    out: Path,
    *,
    records: int = 24_000,
    task_length: int = 100,
    sync_seconds: float = 2.0,
    probe_records: int = 1_000,
    client: str = "kafka-python",
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The three set-ups on the same records, then a new instance's first tasks on new records
    warm (from the sharing group's meta topic) and cold; writes ``summary.json``."""
    out.mkdir(parents=True, exist_ok=True)
    recs = _records(records, task_length, seed, "r")
    meta = f"meta-{uuid.uuid4().hex[:8]}"
    setups = {
        "one instance, 4 partitions": (1, ""),
        "two instances sharing meta-state": (2, meta),
        "two instances, not sharing": (2, ""),
    }
    results: dict[str, Any] = {}
    probe = _records(probe_records, task_length, seed + 1000, "p")
    with EmbeddedBroker(log_path=out / "broker.log") as broker:
        common: dict[str, Any] = {"sync_seconds": sync_seconds, "client": client}
        for name, (instances, topic) in setups.items():
            results[name] = _run(broker, out, recs, instances=instances, meta_topic=topic, **common)
            log(f"{name:<44} post-boundary loss {results[name]['post_boundary_loss']:.3f}")
        for name, topic in (("a new instance, from the group", meta), ("a new instance, cold", "")):
            results[name] = _run(
                broker, out, probe, instances=1, meta_topic=topic, first_tasks=True, **common
            )
            log(f"{name:<44} post-boundary loss {results[name]['post_boundary_loss']:.3f} "
                f"(its first {probe_records // task_length} tasks)")  # fmt: skip
    loss = {name: r["post_boundary_loss"] for name, r in results.items()}
    one = loss["one instance, 4 partitions"]
    summary = {
        "records": records,
        "task_length": task_length,
        "partitions": PARTITIONS,
        "sync_seconds": sync_seconds,
        "setups": results,
        "sharing_vs_one": loss["two instances sharing meta-state"] / one,
        "alone_vs_one": loss["two instances, not sharing"] / one,
        "new_from_group_vs_group": loss["a new instance, from the group"]
        / loss["two instances sharing meta-state"],
        "new_cold_vs_group": loss["a new instance, cold"]
        / loss["two instances sharing meta-state"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
