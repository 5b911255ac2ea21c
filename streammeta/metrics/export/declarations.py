"""Every metric the service exports, declared once on an injected registry.

Names start with ``streammeta_``, base units (seconds, records), counters end in ``_total``,
distributions are histograms. Label sets are bounded: ``learner`` is one of :data:`ROLES`,
``outcome`` and ``reason`` come from fixed lists, ``topic``/``partition`` from the assignment.
Every series with a fixed label set exists from the start, at 0.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = ServiceMetrics(registry)
>>> metrics.rewinds.inc()
>>> registry.get_sample_value("streammeta_rewinds_total")
1.0
>>> registry.get_sample_value("streammeta_recovery_censored_total", {"learner": "baseline"})
0.0
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from streammeta.io.records import REASONS
from streammeta.learn.bank import ORIGINS
from streammeta.metrics.export.histogram import ArrayHistogram
from streammeta.metrics.tracker import RECENT
from streammeta.runtime.status import SPEEDUP_TASKS

__all__ = ["OUTCOMES", "ROLES", "ServiceMetrics"]

disable_created_metrics()  # no ``_created`` series: they double every counter's output

#: The values of the ``learner`` label: the meta-learner and its shadow baseline.
ROLES = ("meta", "baseline")
#: The values of ``streammeta_records_total``'s ``outcome`` label.
OUTCOMES = ("ok", "unlabelled", "dead_letter")

_SAMPLES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000)
_LOSS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_FAST_SECONDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class ServiceMetrics:
    """The service's metrics on ``registry``, one attribute each."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
            return Counter(f"streammeta_{name}", doc, list(labels), registry=registry)

        def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
            return Gauge(f"streammeta_{name}", doc, list(labels), registry=registry)

        def histogram(
            name: str, doc: str, buckets: tuple[float, ...], labels: Iterable[str] = ()
        ) -> Histogram:
            return Histogram(
                f"streammeta_{name}", doc, list(labels), buckets=buckets, registry=registry
            )

        # input and output
        self.records = counter(
            "records", "Records taken in, by outcome (ok, unlabelled, dead_letter).", ["outcome"]
        )
        self.dead_letters = counter(
            "dead_letters", "Records sent to the dead-letter topic, by reason.", ["reason"]
        )
        self.predictions = counter("predictions", "Predictions produced.")
        self.latency = ArrayHistogram(
            "streammeta_event_latency_seconds",
            "Event time (the record's ts, else the message timestamp) to prediction produced.",
            buckets=_LATENCY,
            registry=registry,
        )
        self.batch_seconds = histogram(
            "batch_duration_seconds",
            "One micro-batch: predict, segment, learn, shadow baseline, produce.",
            _FAST_SECONDS,
        )
        # adaptation, meta-learner against the shadow baseline
        self.loss = gauge(
            "prequential_loss",
            f"Mean prequential loss over the last {RECENT} labelled records.",
            ["learner"],
        )
        self.accuracy = gauge(
            "prequential_accuracy",
            f"Prequential accuracy over the last {RECENT} labelled records (classification).",
            ["learner"],
        )
        self.boundaries = counter("boundaries", "Task boundaries (detected or given).")
        self.task = gauge("task", "Current task (segment id).")
        self.task_age = gauge("task_age_records", "Records since the current task opened.")
        self.recovery = histogram(
            "recovery_samples",
            "Labelled samples after a boundary until the rolling loss is back within 10% of "
            "the previous task's level (censored at the task's end); one per closed task.",
            _SAMPLES,
            ["learner"],
        )
        self.censored = counter(
            "recovery_censored", "Closed tasks that never recovered.", ["learner"]
        )
        self.post_loss = histogram(
            "post_boundary_loss",
            "Mean loss over the first 100 labelled samples after a boundary.",
            _LOSS,
            ["learner"],
        )
        self.speedup = gauge(
            "speedup",
            "Baseline recovery samples / meta-learner recovery samples (medians over the last "
            f"{SPEEDUP_TASKS} closed tasks).",
        )
        self.detection_delay = histogram(
            "detection_delay_records",
            "Records from a true switch (a change of the records' concept field) to the "
            "boundary that detected it.",
            _SAMPLES,
        )
        self.missed = counter(
            "switches_missed",
            "True switches passed without a boundary (records carrying a concept only).",
        )
        self.false_alarms = counter(
            "false_alarms",
            "Boundaries with no true switch before (records carrying a concept only).",
        )
        # meta-training and the learned optimizer
        self.meta_updates = counter("meta_updates", "Meta-updates of the initialization.")
        self.meta_loss = gauge("meta_loss", "Query loss of the last meta-update.")
        self.meta_seconds = histogram(
            "meta_update_duration_seconds", "One meta-update.", _FAST_SECONDS
        )
        self.lr_mean = gauge("learned_lr_mean", "Mean of the learned per-parameter rates.")
        self.lr_std = gauge(
            "learned_lr_stddev", "Standard deviation of the learned per-parameter rates."
        )
        self.keys_held = gauge("keys_held", "Keys with their own fast weights.")
        self.keys_evicted = counter("keys_evicted", "Keys evicted (least recently used).")
        self.keys_recovery = gauge(
            "keys_recovery_samples",
            "Labelled records a key's task needs to reach the keyed records' loss level, over "
            "keys' tasks (quantile 0.5 and 0.9).",
            ["quantile"],
        )
        # the bank of fast learners and the concept memory
        self.members = gauge("bank_members", "Fast learners alive in the bank.")
        self.leader_age = gauge(
            "bank_leader_age_records", "Labelled records since the leading member joined the bank."
        )
        self.leader_origin = gauge(
            "bank_leader_origin",
            "1 for where the leading member came from (long_lived, fresh, recalled), else 0.",
            ["origin"],
        )
        self.entropy = gauge(
            "bank_mixture_entropy",
            "Entropy of the members' weights in the mixture, in nats (0: one member predicts).",
        )
        self.candidates = counter(
            "switch_candidates",
            "Switch candidates that started a fresh member, by source (detector, schedule).",
            ["source"],
        )
        self.bank_boundaries = counter(
            "bank_boundaries",
            "Tasks opened, by source: a new member took the lead (bank) or the record's task "
            "field changed (explicit).",
            ["source"],
        )
        self.recalls = counter("concept_recalls", "Stored concepts recalled into the bank.")
        self.recall_hits = counter(
            "concept_recall_hits", "Recalled concepts that went on to lead the bank."
        )
        self.memory_entries = gauge("concept_memory_entries", "Concepts in the memory.")
        self.memory_bytes = gauge(
            "concept_memory_bytes", "Bytes the concept memory holds (allocated for its capacity)."
        )
        # Kafka and state
        self.lag = gauge(
            "consumer_lag_records",
            "Records behind the partition's high watermark.",
            ["topic", "partition"],
        )
        self.assigned = gauge("assigned_partitions", "Partitions assigned to this consumer.")
        self.input_paused = gauge(
            "input_paused", "1 while input is paused because outputs wait for acknowledgement."
        )
        self.pauses = counter("input_pauses", "Times input was paused for backpressure.")
        self.rebalances = counter("rebalances", "Partition assignments received.")
        self.checkpoints = counter("checkpoints", "Checkpoints written and committed.")
        self.checkpoint_seconds = histogram(
            "checkpoint_duration_seconds", "Flush, snapshot, fsync, commit.", _FAST_SECONDS
        )
        self.checkpoint_time = gauge(
            "last_checkpoint_timestamp_seconds", "Unix time of the last checkpoint."
        )
        self.checkpoint_age = gauge("checkpoint_age_seconds", "Seconds since the last checkpoint.")
        self.commit_failures = counter(
            "commit_failures", "Commits refused because a rebalance moved the partitions."
        )
        self.rewinds = counter("rewinds", "Failed deliveries: back to the last checkpoint.")
        self.broker_up = gauge(
            "broker_reachable", "1 while a broker connection is up, 0 while it is not."
        )
        self.meta_merges = counter(
            "meta_merges", "Merges of the group's meta-parameters into this instance's."
        )
        self.meta_peers = gauge("meta_peers", "Other instances whose meta-state was seen.")
        self.meta_peer_age = gauge(
            "meta_peer_age_seconds", "Seconds since the newest peer meta-state was published."
        )
        self.meta_distance = gauge(
            "meta_merge_distance",
            "L2 distance between the local initialization and the merged one, at the last merge.",
        )
        self.meta_malformed = counter(
            "meta_malformed",
            "Meta-state messages ignored: not a complete snapshot of this learner.",
        )
        self.labels_held = gauge(
            "labels_waiting", "Records predicted without a label, waiting for it (by id)."
        )
        self.labels_joined = counter(
            "labels_joined", "Labels that came after their record and were joined to it."
        )
        self.labels_expired = counter(
            "labels_expired",
            "Records whose label did not come within service.label_window (records or seconds).",
        )
        self.labels_other_partition = counter(
            "labels_other_partition",
            "Labels that came on another partition number than their record (another message key).",
        )
        self.delayed_accuracy = gauge(
            "delayed_label_accuracy",
            "Accuracy of the published predictions whose labels came later, since the start.",
        )
        self.transient_errors = counter(
            "source_transient_errors",
            "Passing errors of the input's client (broker unreachable, timeouts); it retries "
            "by itself.",
        )
        self.output_failures = counter(
            "output_failures",
            "Outputs the broker refused for good (logged with their source position).",
            ["kind"],
        )
        self.offset_resets = counter(
            "offset_resets",
            "Resume offsets beyond a topic's end, reset by service.offset_reset.",
        )
        self.polls = counter("polls", "Polls of the input topic, empty ones included.")
        self.device = gauge("device_info", "Where the learner runs.", ["device", "name"])
        self.build = gauge(
            "build_info", "Versions.", ["version", "python", "torch", "river", "algorithm"]
        )
        for family, values in (
            (self.dead_letters, REASONS),
            (self.records, OUTCOMES),
            (self.candidates, ("detector", "schedule")),
            (self.bank_boundaries, ("bank", "explicit")),
            (self.leader_origin, ORIGINS),
            (self.recovery, ROLES),
            (self.post_loss, ROLES),
            (self.censored, ROLES),
        ):
            for value in values:
                family.labels(value)
