"""Kafka throughput on the embedded broker, per client, in one run on one machine: the raw
consume ceiling (poll + decode, no learning) and the service end to end (input topic to
predictions topic), for single-record and 100-record batch messages.

End to end runs the whole service (decode, predict, segment, learn, shadow baseline, produce,
checkpoints) on sinusoid records drifting every 10,000 records, at two learner schedules: the
configured one, and a high-throughput one (micro-batches of 256 records, a meta-update every
2,560 records). Timing starts at the first record processed, so the consumer group's join is
not counted, and ends after the final checkpoint (producer flushed, offsets committed).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from streammeta.config import Config, KafkaConfig
from streammeta.io import (
    Decoder,
    EmbeddedBroker,
    available_clients,
    ensure_topics,
    open_sink,
    open_source,
)
from streammeta.io.simulate import publish
from streammeta.runtime.pipeline import Step
from streammeta.runtime.service import Service, build_service
from streammeta.streams import make_stream

__all__ = ["FAST", "TASK_LENGTH", "measure_kafka", "service_config", "tagged_topics"]

#: The high-throughput schedule: big micro-batches, sparse meta-updates.
FAST = {"micro_batch": 256, "meta_every": 2560}
#: The records: sinusoid tasks of 10,000 records (a drift every 10,000 records, as in the
#: learner benchmark's sparse schedule; with 100-record tasks every micro-batch of 256 holds a
#: boundary, and each boundary makes a meta-update due).
TASK_LENGTH = 10_000
LAYOUTS = {"single": 1, "batch100": 100}


def tagged_topics(cfg: KafkaConfig, tag: str) -> KafkaConfig:
    """``cfg`` with topics and a group of its own, named by ``tag``."""
    return dataclasses.replace(
        cfg,
        input_topic=f"in-{tag}",
        output_topic=f"out-{tag}",
        dlq_topic=f"dlq-{tag}",
        group=f"group-{tag}",
    )


def raw_ceiling(cfg: KafkaConfig, client: str, n_features: int, records: int) -> float:
    """Records/s of poll + decode alone over ``records`` records already in the topic."""
    decoder = Decoder(n_features=n_features, max_message_bytes=cfg.max_message_bytes)
    got = 0
    t0 = None
    with open_source(cfg, client=client) as source:
        source.assign([(cfg.input_topic, 0)])
        while got < records:
            messages = source.poll(cfg.poll_max_records, 1.0)
            if messages and t0 is None:
                t0 = time.perf_counter()
            got += len(decoder.decode(messages).records)
    return records / (time.perf_counter() - (t0 or time.perf_counter()))


def end_to_end(config: Config, records: int) -> float:
    """Records/s of the service from the first record processed to its final checkpoint."""
    first: list[float] = []

    def mark(service: Service, step: Step | None) -> None:
        if step is not None and not first:
            first.append(time.perf_counter())

    service = build_service(config, on_batch=mark)
    stats = service.run(max_records=records)
    assert stats.records == records, stats
    return records / (time.perf_counter() - first[0])


def measure_kafka(config: Config, records: int, *, log: Any = print) -> dict[str, Any]:
    """Every measurement for every installed client, on one embedded broker."""
    stream = make_stream("sinusoid", task_length=TASK_LENGTH, seed=0)
    values = list(stream.records(records))
    out: dict[str, Any] = {}
    with EmbeddedBroker() as broker:
        base = dataclasses.replace(
            config.kafka, bootstrap_servers=broker.bootstrap, session_timeout_ms=6000
        )
        for client in available_clients():
            raw: dict[str, float] = {}
            e2e: dict[str, dict[str, float]] = {"configured": {}, "fast": {}}
            for layout, size in LAYOUTS.items():
                cfg = tagged_topics(dataclasses.replace(base, client=client), uuid.uuid4().hex[:8])
                ensure_topics(cfg, [cfg.input_topic])
                with open_sink(cfg) as sink:
                    publish(sink, cfg.input_topic, values, batch_size=size)
                raw[layout] = raw_ceiling(cfg, client, stream.n_features, records)
                for schedule, overrides in (("configured", {}), ("fast", FAST)):
                    run = dataclasses.replace(
                        tagged_topics(cfg, uuid.uuid4().hex[:8]), input_topic=cfg.input_topic
                    )
                    ensure_topics(run, [run.output_topic, run.dlq_topic])
                    e2e[schedule][layout] = end_to_end(
                        service_config(config, run, overrides), records
                    )
                log(
                    f"{client:>12} {layout:>8}: raw ceiling {raw[layout]:>9,.0f} records/s; "
                    f"end to end {e2e['configured'][layout]:>8,.0f} (configured schedule), "
                    f"{e2e['fast'][layout]:>8,.0f} (fast schedule)"
                )
            out[client] = {
                "raw_ceiling_records_per_s": raw["single"],
                "raw_ceiling_by_layout": raw,
                "end_to_end_records_per_s": e2e["configured"],
                "end_to_end_fast_schedule_records_per_s": e2e["fast"],
            }
    return out


def service_config(config: Config, kafka: KafkaConfig, overrides: dict[str, int]) -> Config:
    """``config`` on ``kafka`` with a fresh checkpoint folder; ``overrides``: a schedule such as
    :data:`FAST`."""
    import tempfile

    learner = config.learner
    service = dataclasses.replace(config.service, checkpoint_dir=tempfile.mkdtemp())
    if overrides:
        learner = dataclasses.replace(learner, meta_every=overrides["meta_every"])
        service = dataclasses.replace(service, micro_batch=overrides["micro_batch"])
    return dataclasses.replace(config, kafka=kafka, learner=learner, service=service)
