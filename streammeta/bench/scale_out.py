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


def _post_boundary_loss(cfg: KafkaConfig, truth: dict[str, int]) -> tuple[float, int]:
    """Mean over tasks (each partition's first left out) of the mean loss over the first
    ``POST`` records of the task, from the published predictions; and the predictions' count."""
    rows = [json.loads(m.value or b"{}") for m in read_topic(cfg, cfg.output_topic)]
    by_task: dict[int, list[tuple[int, float]]] = {}
    for p in rows:
        by_task.setdefault(truth[p["id"]], []).append((p["offset"], p["loss"]))
    losses = []
    for task, seen in by_task.items():
        seen.sort()
        if task < PARTITIONS:  # about each partition's first task: no meta-learning yet
            continue
        losses.append(float(np.mean([loss for _, loss in seen[:POST]])))
    return float(np.mean(losses)), len(rows)


def run_scale_out(
    out: Path,
    *,
    records: int = 24_000,
    task_length: int = 100,
    sync_seconds: float = 2.0,
    client: str = "kafka-python",
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The three set-ups on the same records; writes ``summary.json``."""
    out.mkdir(parents=True, exist_ok=True)
    stream = make_stream("sinusoid", task_length=task_length, seed=seed)
    recs = [{**r, "concept": r.pop("task")} for r in stream.records(records)]
    for i, r in enumerate(recs):
        r["id"] = f"r{i}"
    truth = {r["id"]: int(r["concept"]) for r in recs}
    setups = {
        "one instance, 4 partitions": (1, False),
        "two instances sharing meta-state": (2, True),
        "two instances, not sharing": (2, False),
    }
    results: dict[str, Any] = {}
    with EmbeddedBroker(log_path=out / "broker.log") as broker:
        for name, (instances, share) in setups.items():
            tag = uuid.uuid4().hex[:8]
            cfg = KafkaConfig(
                bootstrap_servers=broker.bootstrap, client=client, input_topic=f"in-{tag}",
                output_topic=f"out-{tag}", dlq_topic=f"dlq-{tag}", group=f"scale-{tag}",
                session_timeout_ms=6000, meta_topic=f"meta-{tag}" if share else "",
            )  # fmt: skip
            _publish(cfg, recs)
            start = time.monotonic()
            procs = [
                start_service(
                    cfg, out / tag / f"instance-{i}", "--idle-exit", "8",
                    "--meta.sync_seconds", str(sync_seconds), "--meta.instance", f"i{i}",
                    *(["--kafka.meta_topic", cfg.meta_topic] if share else []),
                )
                for i in range(instances)
            ]  # fmt: skip
            for proc in procs:
                _, err = proc.communicate(timeout=1800)
                if proc.returncode != 0:
                    raise RuntimeError(f"{name}: an instance failed:\n{err[-2000:]}")
            seconds = time.monotonic() - start
            loss, predicted = _post_boundary_loss(cfg, truth)
            results[name] = {
                "post_boundary_loss": loss,
                "predicted": predicted,
                "seconds": round(seconds, 1),
            }
            log(f"{name:<36} post-boundary loss {loss:.3f}  ({predicted:,} predictions, "
                f"{seconds:.0f} s)")  # fmt: skip
    one = results["one instance, 4 partitions"]["post_boundary_loss"]
    summary = {
        "records": records,
        "task_length": task_length,
        "partitions": PARTITIONS,
        "sync_seconds": sync_seconds,
        "setups": results,
        "sharing_vs_one": results["two instances sharing meta-state"]["post_boundary_loss"] / one,
        "alone_vs_one": results["two instances, not sharing"]["post_boundary_loss"] / one,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
