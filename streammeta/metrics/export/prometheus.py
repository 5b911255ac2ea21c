"""Every metric the service exports, declared once, recorded by a sensor on an injected registry.

Names start with ``streammeta_``, base units (seconds, records), counters end in ``_total``,
distributions are histograms. Label sets are bounded: ``learner`` is ``meta`` or ``baseline``,
``outcome`` and ``reason`` come from fixed lists, ``topic``/``partition`` from the assignment.
The learner-level figures (losses, recovery, speedup, learned learning rates) read the pipeline
after each micro-batch; everything else comes from the run loop's hooks.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> sensor = PrometheusSensor(registry)
>>> sensor.on_dead_letters({"malformed_json": 2})
>>> registry.get_sample_value("streammeta_records_total", {"outcome": "dead_letter"})
2.0
>>> registry.get_sample_value("streammeta_dead_letters_total", {"reason": "malformed_json"})
2.0
"""

from __future__ import annotations

import itertools
import platform
import time
from collections.abc import Iterable, Mapping
from importlib.metadata import version
from typing import TYPE_CHECKING

import numpy as np
import torch
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from streammeta.io.records import REASONS
from streammeta.learn.bank import ORIGINS
from streammeta.metrics.histogram import ArrayHistogram
from streammeta.metrics.sensor import Sensor

if TYPE_CHECKING:
    from streammeta.io.base import Partition
    from streammeta.io.records import Records
    from streammeta.metrics.tracker import AdaptationTracker
    from streammeta.runtime.pipeline import Pipeline, Step

__all__ = ["LEARNERS", "PrometheusSensor"]

disable_created_metrics()  # no ``_created`` series: they double every counter's output

LEARNERS = ("meta", "baseline")
#: Labelled records the prequential loss and accuracy gauges average over.
PREQUENTIAL_WINDOW = 1000
#: Closed tasks the speedup is taken over (medians of recovery samples).
SPEEDUP_TASKS = 50
#: Seconds between reads of the learner's figures when no meta-update happened.
DESCRIBE_EVERY_S = 1.0

_SAMPLES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000)
_LOSS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_FAST_SECONDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class _Rolling:
    """Mean of the last ``size`` finite values, fed by arrays."""

    def __init__(self, size: int) -> None:
        self.values = np.full(size, np.nan)
        self.at = 0

    def add(self, values: np.ndarray) -> None:
        values = values[np.isfinite(values)][-len(self.values) :]
        idx = (self.at + np.arange(len(values))) % len(self.values)
        self.values[idx] = values
        self.at = (self.at + len(values)) % len(self.values)

    @property
    def mean(self) -> float:
        seen = self.values[np.isfinite(self.values)]
        return float(seen.mean()) if len(seen) else float("nan")


class PrometheusSensor(Sensor):
    """Records the run loop's hooks as Prometheus metrics on ``registry``; also keeps what
    ``/readyz`` needs (assignment, last poll, last checkpoint)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

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
            f"Mean prequential loss over the last {PREQUENTIAL_WINDOW} labelled records.",
            ["learner"],
        )
        self.accuracy = gauge(
            "prequential_accuracy",
            f"Prequential accuracy over the last {PREQUENTIAL_WINDOW} labelled records "
            "(classification).",
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
        self.checkpoint_age.set_function(lambda: time.time() - self.last_checkpoint)
        self.commit_failures = counter(
            "commit_failures", "Commits refused because a rebalance moved the partitions."
        )
        self.rewinds = counter("rewinds", "Failed deliveries: back to the last checkpoint.")
        self.broker_up = gauge(
            "broker_reachable", "1 while a broker connection is up, 0 while it is not."
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
        for reason in REASONS:  # every series exists from the start, at 0
            self.dead_letters.labels(reason)
        for outcome in ("ok", "unlabelled", "dead_letter"):
            self.records.labels(outcome)
        for source in ("detector", "schedule"):
            self.candidates.labels(source)
        for source in ("bank", "explicit"):
            self.bank_boundaries.labels(source)
        for origin in ORIGINS:
            self.leader_origin.labels(origin)
        for learner in LEARNERS:
            self.recovery.labels(learner)
            self.post_loss.labels(learner)
            self.censored.labels(learner)
        self._rolling = {learner: _Rolling(PREQUENTIAL_WINDOW) for learner in LEARNERS}
        self._correct = {learner: _Rolling(PREQUENTIAL_WINDOW) for learner in LEARNERS}
        self._closed = dict.fromkeys(LEARNERS, 0)
        self._tracker_state = (0, 0)  # missed switches, false alarms already counted
        self._meta = (0, 0.0)  # meta-updates and their seconds already counted
        self._evicted = 0
        self._bank_counts: dict[str, int] = {}  # the learner's bank counters already counted
        self._described = 0.0  # monotonic time the learner's figures were last read
        self._task_start = 0
        self._lag_series: set[tuple[str, str]] = set()
        self.partitions = 0
        self.last_poll = 0.0  # monotonic; 0 before the first
        self.last_checkpoint = time.time()
        self._pending_since: float | None = None  # first record processed since a checkpoint
        self._trouble: str | None = None
        self.broker_up.set(1)

    # --- hooks -----------------------------------------------------------------------------

    def on_start(self, pipeline: Pipeline) -> None:
        learner = pipeline.learner
        device = getattr(learner, "device", torch.device("cpu"))
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
        self.device.labels(device.type, name).set(1)
        self.build.labels(
            version("streammeta"),
            platform.python_version(),
            torch.__version__,
            version("river"),
            pipeline.name,
        ).set(1)
        self._closed = {
            "meta": pipeline.tracker.closed_total,
            "baseline": pipeline.baseline_tracker.closed_total,
        }
        self._meta = self._meta_progress(pipeline)
        self._task_start = pipeline.records

    def on_poll(self, messages: int) -> None:
        self.polls.inc()
        self.last_poll = time.monotonic()

    def on_dead_letters(self, reasons: Mapping[str, int]) -> None:
        self._pending_since = self._pending_since or time.time()
        for reason, n in reasons.items():
            self.dead_letters.labels(reason).inc(n)
            self.records.labels("dead_letter").inc(n)

    def on_batch(self, records: Records, step: Step, pipeline: Pipeline, seconds: float) -> None:
        self._pending_since = self._pending_since or time.time()
        n = len(records)
        labelled = records.labelled
        n_labelled = int(labelled.sum())
        self.records.labels("ok").inc(n_labelled)
        self.records.labels("unlabelled").inc(n - n_labelled)
        self.predictions.inc(n)
        self.batch_seconds.observe(seconds)
        self.latency.observe(time.time() - records.ts / 1000.0)
        # prequential loss and accuracy
        self._rolling["meta"].add(step.loss)
        if step.baseline_loss is not None:
            self._rolling["baseline"].add(step.baseline_loss)
        if step.proba is not None:
            y = records.y[labelled]
            self._correct["meta"].add((step.y_hat[labelled] == y).astype(np.float64))
            if step.baseline_y_hat is not None:
                hit = step.baseline_y_hat[labelled] == y
                self._correct["baseline"].add(hit.astype(np.float64))
        for learner in LEARNERS:
            self.loss.labels(learner).set(self._rolling[learner].mean)
            if step.proba is not None:
                self.accuracy.labels(learner).set(self._correct[learner].mean)
        # tasks
        cuts = np.flatnonzero(step.boundary)
        if len(cuts):
            self.boundaries.inc(len(cuts))
            self._task_start = pipeline.records - n + int(cuts[-1])
        self.task.set(int(step.task[-1]))
        self.task_age.set(pipeline.records - self._task_start)
        self._closed_tasks(pipeline)
        self._learned(pipeline)

    def _closed_tasks(self, pipeline: Pipeline) -> None:
        trackers: dict[str, AdaptationTracker] = {"meta": pipeline.tracker}
        if pipeline.baseline is not None:
            trackers["baseline"] = pipeline.baseline_tracker
        closed_any = False
        for learner, tracker in trackers.items():
            new = min(tracker.closed_total - self._closed[learner], len(tracker.closed))
            self._closed[learner] = tracker.closed_total
            closed_any |= new > 0
            for b in reversed(list(itertools.islice(reversed(tracker.closed), max(new, 0)))):
                if b.recovery_samples is not None:
                    self.recovery.labels(learner).observe(b.recovery_samples)
                if b.censored:
                    self.censored.labels(learner).inc()
                if b.post_boundary_loss is not None and np.isfinite(b.post_boundary_loss):
                    self.post_loss.labels(learner).observe(b.post_boundary_loss)
                if learner == "meta" and b.detection_delay is not None:
                    self.detection_delay.observe(b.detection_delay)
        mine = pipeline.tracker
        if pipeline.knows_concept:  # without the truth, every boundary would be an alarm
            missed, alarms = self._tracker_state
            self.missed.inc(max(0, mine.missed - missed))
            self.false_alarms.inc(max(0, mine.false_alarms - alarms))
        self._tracker_state = (mine.missed, mine.false_alarms)
        if "baseline" in trackers and closed_any:
            self.speedup.set(mine.speedup(pipeline.baseline_tracker, last=SPEEDUP_TASKS))

    @staticmethod
    def _meta_progress(pipeline: Pipeline) -> tuple[int, float]:
        trainer = getattr(pipeline.learner, "trainer", None)
        if trainer is None:
            return 0, 0.0
        return trainer.updates, trainer.seconds

    def _learned(self, pipeline: Pipeline) -> None:
        updates, seconds = self._meta_progress(pipeline)
        done, spent = self._meta
        if updates > done:
            self.meta_updates.inc(updates - done)
            each = (seconds - spent) / (updates - done)
            for _ in range(updates - done):
                self.meta_seconds.observe(each)
        self._meta = (updates, seconds)
        if updates == done and time.monotonic() - self._described < DESCRIBE_EVERY_S:
            return  # the learned state changes at meta-updates; keys are read once a second
        self._described = time.monotonic()
        figures = pipeline.learner.describe()
        if "meta_loss" in figures:
            self.meta_loss.set(figures["meta_loss"])
        if "lr_mean" in figures:
            self.lr_mean.set(figures["lr_mean"])
            self.lr_std.set(figures["lr_std"])
        if "keys_held" in figures:
            self.keys_held.set(figures["keys_held"])
            evicted = int(figures["keys_evicted"])
            self.keys_evicted.inc(max(0, evicted - self._evicted))
            self._evicted = evicted
        if "members_alive" in figures:
            self._bank(figures)

    def _bank(self, figures: Mapping[str, float]) -> None:
        self.members.set(figures["members_alive"])
        self.leader_age.set(figures["leader_age"])
        for i, origin in enumerate(ORIGINS):
            self.leader_origin.labels(origin).set(float(figures["leader_origin"] == i))
        self.entropy.set(figures["mixture_entropy"])
        self.memory_entries.set(figures["memory_size"])
        self.memory_bytes.set(figures["memory_bytes"])
        for key, metric in (
            ("candidates_detector", self.candidates.labels("detector")),
            ("candidates_schedule", self.candidates.labels("schedule")),
            ("boundaries_bank", self.bank_boundaries.labels("bank")),
            ("boundaries_explicit", self.bank_boundaries.labels("explicit")),
            ("recalls", self.recalls),
            ("recall_hits", self.recall_hits),
        ):
            count = int(figures[key])
            metric.inc(max(0, count - self._bank_counts.get(key, 0)))
            self._bank_counts[key] = count

    def on_checkpoint(self, seconds: float) -> None:
        self.checkpoints.inc()
        self.checkpoint_seconds.observe(seconds)
        self.last_checkpoint = time.time()
        self.checkpoint_time.set(self.last_checkpoint)
        self._pending_since = None

    def on_commit_failure(self) -> None:
        self.commit_failures.inc()

    def on_rewind(self) -> None:
        self.rewinds.inc()

    def on_assigned(self, partitions: Iterable[Partition], held: int) -> None:
        self.rebalances.inc()
        self.partitions = held
        self.assigned.set(held)

    def on_revoked(self, partitions: Iterable[Partition], held: int) -> None:
        self.partitions = held
        self.assigned.set(held)
        for topic, partition in partitions:
            if (topic, str(partition)) in self._lag_series:
                self.lag.remove(topic, str(partition))
                self._lag_series.discard((topic, str(partition)))

    def on_health(self, reachable: bool, trouble: str | None) -> None:
        self._trouble = trouble
        self.broker_up.set(int(reachable))

    def on_output_failure(self, kind: str) -> None:
        self.output_failures.labels(kind).inc()

    def on_offset_reset(self, partition: Partition) -> None:
        self.offset_resets.inc()

    def on_backpressure(self, paused: bool) -> None:
        self.input_paused.set(int(paused))
        if paused:
            self.pauses.inc()

    def on_lag(self, lag: Mapping[Partition, int]) -> None:
        for (topic, partition), behind in lag.items():
            self.lag.labels(topic, str(partition)).set(behind)
            self._lag_series.add((topic, str(partition)))

    # --- readiness -------------------------------------------------------------------------

    def readiness(
        self, *, stale_s: float, poll_s: float = 30.0, later_s: float = 0.0
    ) -> tuple[bool, str]:
        """Ready when partitions are assigned, a poll returned within ``poll_s`` seconds and
        no processed record has waited more than ``stale_s`` for a checkpoint (an idle service
        with nothing to checkpoint stays ready); the reason says which failed. ``later_s``
        asks as if that many seconds had passed (for tests). Trouble the run loop reported
        (broker unreachable, input topic missing) comes first."""
        if self._trouble is not None:
            return False, self._trouble
        if self.partitions == 0:
            return False, "no partitions assigned"
        since_poll = time.monotonic() + later_s - self.last_poll
        if since_poll > poll_s:
            return False, f"no poll for {since_poll:.0f} s"
        if self._pending_since is not None:
            waited = time.time() + later_s - self._pending_since
            if waited > stale_s:
                return False, (
                    f"records processed {waited:.0f} s ago are not checkpointed "
                    f"(stale after {stale_s:.0f} s)"
                )
        return True, "ok"
