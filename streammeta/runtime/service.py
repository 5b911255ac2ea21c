"""The learner service on Kafka: :func:`build_service` assembles the run loop
(:class:`~streammeta.runtime.loop.Service`) that a configuration describes, on a Kafka source
and sink, with a checkpoint store that refuses a checkpoint written under other learner
settings. This module is the service's public face: it exports the loop, its counters and its
errors too.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from streammeta.config import Config
from streammeta.io.decode import Decoder
from streammeta.io.errors import KafkaIOError
from streammeta.io.kafka import ensure_topics, open_sink, open_source
from streammeta.learn.learner import MetaLearner
from streammeta.runtime.assignment import OffsetResetError
from streammeta.runtime.checkpoint import CheckpointStore
from streammeta.runtime.labels import LabelJoin
from streammeta.runtime.loop import Service
from streammeta.runtime.metasync import MetaSync
from streammeta.runtime.pipeline import Pipeline, Step
from streammeta.runtime.sensor import Sensor
from streammeta.runtime.stats import RunStats

__all__ = ["OffsetResetError", "RunStats", "Service", "build_service"]

log = logging.getLogger(__name__)


#: Learner and segment settings a checkpoint's state depends on: a checkpoint written under
#: other values is refused at start-up rather than restored into the wrong shapes.
_FINGERPRINT = {
    "learner": ("task", "algorithm", "optimizer", "hidden", "layer_norm", "n_features",
                "n_classes", "labels", "feature_names", "baseline", "standardize", "bank_size",
                "memory_size"),
    "segment": ("detector",),
}  # fmt: skip
#: the layout of the learner's state; a checkpoint of another layout is refused the same way
_STATE_FORMAT = 3


def build_service(
    config: Config,
    *,
    on_batch: Callable[[Service, Step | None], None] | None = None,
    sensor: Sensor | None = None,
) -> Service:
    """The service ``config`` describes, on a Kafka source and sink."""
    fingerprint = {
        f"{section}.{name}": getattr(getattr(config, section), name)
        for section, names in _FINGERPRINT.items()
        for name in names
    } | {"state_format": _STATE_FORMAT}
    k, learner, svc = config.kafka, config.learner, config.service
    store = CheckpointStore(svc.checkpoint_dir, fingerprint=fingerprint)  # refused before Kafka
    log.info(
        "starting: %s learner (%s, %s, %d features%s, hidden %s) on %s, detector %s; "
        "%s -> %s (dead letters %s), group %r, client %s; checkpoints in %s every %d records "
        "or %g s",
        learner.task, learner.algorithm, learner.optimizer, learner.n_features,
        f", {learner.n_classes} classes" if learner.n_classes else "", list(learner.hidden),
        learner.device, config.segment.detector, k.input_topic, k.output_topic, k.dlq_topic,
        k.group, k.client, svc.checkpoint_dir, svc.checkpoint_records, svc.checkpoint_seconds,
    )  # fmt: skip
    service = Service(
        Pipeline.from_config(config),
        open_source(k),
        open_sink(k),
        Decoder(
            n_features=learner.n_features,
            n_classes=learner.n_classes,
            labels=learner.labels,
            feature_names=learner.feature_names,
            max_message_bytes=k.max_message_bytes,
        ),
        store,
        input_topic=k.input_topic,
        output_topic=k.output_topic,
        dlq_topic=k.dlq_topic,
        label_topic=k.label_topic,
        labels=LabelJoin(
            svc.label_window,
            svc.label_window_seconds,
            early_topics=[k.label_topic] if k.label_topic else [],
        ),
        poll_max_records=k.poll_max_records,
        checkpoint_records=svc.checkpoint_records,
        checkpoint_seconds=svc.checkpoint_seconds,
        micro_batch=svc.micro_batch,
        max_in_flight=svc.max_in_flight,
        max_message_bytes=k.max_message_bytes,
        flush_timeout=svc.flush_timeout,
        offset_reset=svc.offset_reset,
        shutdown_grace=svc.shutdown_grace,
        progress_seconds=svc.progress_seconds,
        on_batch=on_batch,
        sensor=sensor,
    )
    if k.meta_topic:
        service.meta_sync = _meta_sync(config, service.pipeline, sensor)
    return service


def _meta_sync(config: Config, pipeline: Pipeline, sensor: Sensor | None) -> MetaSync | None:
    """The meta-state sharing ``kafka.meta_topic`` asks for, started from the group's merged
    state (after the checkpoint: the fast state is the partitions', the meta-state the
    group's); ``None`` for a learner without meta-parameters to share."""
    k = config.kafka
    if not isinstance(pipeline.learner, MetaLearner):
        log.warning("kafka.meta_topic: algorithm %r has no meta-parameters to share; ignored",
                    config.learner.algorithm)  # fmt: skip
        return None
    instance = config.meta.instance or f"{socket.gethostname()}:{config.service.checkpoint_dir}"
    try:
        ensure_topics(k, [k.meta_topic])
    except KafkaIOError as exc:  # the first sync tries again
        log.warning("meta topic %r not created: %s", k.meta_topic, exc)
    sync = MetaSync(
        pipeline.learner,
        open_source(k),  # assigned, outside the group: every instance reads every message
        open_sink(k),
        topic=k.meta_topic,
        instance=instance,
        every_s=config.meta.sync_seconds,
        sensor=sensor,
    )
    try:
        sync.warm_start()
    except Exception as exc:  # a broker away at start-up: the instance starts alone
        log.warning("meta-state warm start skipped (%s: %s)", type(exc).__name__, exc)
    log.info("sharing meta-state on %r as %r every %g s", k.meta_topic, instance,
             config.meta.sync_seconds)  # fmt: skip
    return sync
