"""The late-labels benchmark, on the embedded broker with ``streammeta run``: the same seeded
stream once with each label inside its record and once with every label published ``delay``
records after its record (``{"id", "y"}``, on the input topic or on a label topic), the second
run killed with SIGKILL ``kills`` times and restarted.

It reports the accuracy of the published predictions against the true labels in both runs
(the predictions of the delayed run were all published before their labels), and checks that
nothing was lost: every record predicted, every label joined to its record or dead-lettered.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from streammeta.bench.crash import checkpoint_state, read_topic, start_service
from streammeta.config import KafkaConfig
from streammeta.io import EmbeddedBroker, ensure_topics, open_sink
from streammeta.io.simulate import delay_labels, publish
from streammeta.streams import make_stream

__all__ = ["run_late_labels"]

LEARNER = [
    "--learner.task", "classification", "--learner.n_classes", "2",
    "--learner.n_features", "3", "--service.checkpoint_records", "1000",
]  # fmt: skip


def _records(
    stream: str, n: int, seed: int, task_length: int | None = None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The stream's records with ids (and the true concept for evaluation), and each id's
    label."""
    rows = [
        {**rec, "id": f"r{i}"}
        for i, rec in enumerate(
            make_stream(stream, task_length=task_length, seed=seed).records(n, truth="concept")
        )
    ]
    return rows, {r["id"]: int(r["y"]) for r in rows}


def _run(
    cfg: KafkaConfig,
    out: Path,
    records: Iterable[dict[str, Any]],
    *,
    kills: int,
    seed: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Publish, run (killed ``kills`` times, then drained), read what came out."""
    topics = [cfg.input_topic, cfg.output_topic, cfg.dlq_topic, *filter(None, [cfg.label_topic])]
    ensure_topics(cfg, topics)
    with open_sink(cfg) as sink:
        publish(sink, cfg.input_topic, records, label_topic=cfg.label_topic)
    checkpoints = out / "checkpoints"
    extra = [*LEARNER, *(["--label-topic", cfg.label_topic] if cfg.label_topic else [])]
    rng = random.Random(seed)
    start = time.monotonic()
    for k in range(kills):
        proc = start_service(cfg, checkpoints, *extra)
        time.sleep(rng.uniform(6.0, 20.0))  # start-up takes 3 to 5 s
        proc.kill()
        proc.wait()
        learned = checkpoint_state(checkpoints).get("records", 0)
        log(f"  kill {k + 1}/{kills}: checkpoint at {learned:,} records")
    last = start_service(cfg, checkpoints, *extra, "--idle-exit", "3")
    _, err = last.communicate(timeout=1200)
    if last.returncode != 0:
        raise RuntimeError(f"the final run failed:\n{err[-2000:]}")
    seconds = time.monotonic() - start
    predicted = {}
    for m in read_topic(cfg, cfg.output_topic):
        p = json.loads(m.value or b"{}")
        predicted[p["id"]] = p["y_hat"]  # the last one stands
    dead: Counter[str] = Counter()
    for m in read_topic(cfg, cfg.dlq_topic):
        dead[dict(m.headers)["streammeta.reason"].decode()] += 1
    state = checkpoint_state(checkpoints)
    return {"predicted": predicted, "dead": dict(dead), "learned": int(state.get("records", 0)),
            "labels": state.get("labels") or {}, "seconds": seconds}  # fmt: skip


def run_late_labels(
    out: Path,
    *,
    stream: str = "sea",
    task_length: int | None = None,
    records: int = 20_000,
    delay: int = 500,
    kills: int = 3,
    label_topic: bool = False,
    client: str = "kafka-python",
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Both runs and the checks; writes ``summary.json``."""
    out.mkdir(parents=True, exist_ok=True)
    rows, truth = _records(stream, records, seed, task_length)
    runs: dict[str, dict[str, Any]] = {}
    with EmbeddedBroker(log_path=out / "broker.log") as broker:
        for name, data, k in (
            ("labels in the records", rows, 0),
            (f"labels {delay} records later", delay_labels(rows, delay), kills),
        ):
            tag = uuid.uuid4().hex[:8]
            cfg = KafkaConfig(
                bootstrap_servers=broker.bootstrap, client=client, input_topic=f"in-{tag}",
                output_topic=f"out-{tag}", dlq_topic=f"dlq-{tag}", group=f"late-{tag}",
                session_timeout_ms=3000,
                label_topic=f"labels-{tag}" if label_topic and k else "",
            )  # fmt: skip
            log(f"{name}: {records:,} records of {stream}, {k} kills")
            run = _run(cfg, out / tag, data, kills=k, seed=seed, log=log)
            hits = [run["predicted"][i] == y for i, y in truth.items() if i in run["predicted"]]
            counts = run["labels"].get("counts", (0, 0, 0, 0, 0.0))
            runs[name] = {
                "accuracy": float(np.mean(hits)) if hits else float("nan"),
                "accuracy_second_half": float(np.mean(hits[len(hits) // 2 :])) if hits else 0.0,
                "predicted": len(run["predicted"]),
                "missing_predictions": records - len(run["predicted"]),
                "labels_joined": int(counts[0]),
                "labels_expired": int(counts[1]),
                "dead_letters": run["dead"],
                "learned_records": run["learned"],
                "seconds": round(run["seconds"], 1),
            }
            log(f"  {json.dumps(runs[name])}")
    immediate, late = runs.values()
    accounted = late["labels_joined"] + sum(late["dead_letters"].values())
    summary = {
        "stream": stream,
        "task_length": task_length,
        "records": records,
        "delay": delay,
        "kills": kills,
        "runs": runs,
        "accuracy_gap_points": 100 * (immediate["accuracy"] - late["accuracy"]),
        "every_record_predicted": late["missing_predictions"] == 0,
        "every_label_joined_or_dead_lettered": accounted >= records,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    log(
        f"accuracy {immediate['accuracy']:.3f} with labels inside, {late['accuracy']:.3f} with "
        f"labels {delay} records later ({summary['accuracy_gap_points']:+.1f} points); "
        f"{late['missing_predictions']} records without a prediction; {late['labels_joined']:,} "
        f"labels joined, dead letters {late['dead_letters']}"
    )
    return summary
