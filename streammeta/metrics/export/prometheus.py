"""The Prometheus sensor: records the run loop's hooks on the service's metrics.

The metrics are declared in :mod:`~streammeta.metrics.export.declarations` on the registry the
caller injects; the learner-level figures (losses, recovery, speedup, learned learning rates)
come from the pipeline's status after each micro-batch, everything else from the run loop's
hooks. ``/readyz`` reads :attr:`PrometheusSensor.readiness`.

>>> from prometheus_client import CollectorRegistry, Counter
>>> registry = CollectorRegistry()
>>> sensor = PrometheusSensor(registry)
>>> sensor.on_dead_letters({"malformed_json": 2})
>>> registry.get_sample_value("streammeta_records_total", {"outcome": "dead_letter"})
2.0
>>> registry.get_sample_value("streammeta_dead_letters_total", {"reason": "malformed_json"})
2.0
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable, Mapping
from importlib.metadata import version
from typing import TYPE_CHECKING

import numpy as np
import torch
from prometheus_client import CollectorRegistry, Counter

from streammeta.learn.bank import ORIGINS
from streammeta.metrics.export.declarations import ROLES, ServiceMetrics
from streammeta.metrics.export.readiness import Readiness
from streammeta.runtime.sensor import Sensor

if TYPE_CHECKING:
    from streammeta.io.base import Partition
    from streammeta.io.records import Records
    from streammeta.runtime.pipeline import Step
    from streammeta.runtime.status import LearnerStatus, PipelineStatus

__all__ = ["PrometheusSensor"]


class PrometheusSensor(Sensor):
    """Records the run loop's hooks as Prometheus metrics on ``registry`` (``metrics`` holds
    them) and keeps what ``/readyz`` needs in ``readiness``."""

    reads_learned = True

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.metrics = m = ServiceMetrics(registry)
        self.readiness = Readiness()
        m.checkpoint_age.set_function(lambda: time.time() - self.readiness.last_checkpoint)
        m.broker_up.set(1)
        self._counted: dict[str, float] = {}  # cumulative figures already counted, by name
        self._meta = (0, 0.0)  # meta-updates and their seconds already counted
        self._task_start = 0
        self._lag_series: set[tuple[str, str]] = set()

    # --- the learner ------------------------------------------------------------------------

    def on_start(self, status: PipelineStatus) -> None:
        m, device = self.metrics, torch.device(status.device)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
        m.device.labels(device.type, name).set(1)
        m.build.labels(
            version("streammeta"),
            platform.python_version(),
            torch.__version__,
            version("river"),
            status.name,
        ).set(1)
        self._meta = (status.meta_updates, status.meta_seconds)
        self._task_start = status.records
        if status.learned is not None:
            self._learned(status.learned)

    def on_batch(
        self, records: Records, step: Step, status: PipelineStatus, seconds: float
    ) -> None:
        m = self.metrics
        self.readiness.processed()
        n = len(records)
        n_labelled = int(records.labelled.sum())
        m.records.labels("ok").inc(n_labelled)
        m.records.labels("unlabelled").inc(n - n_labelled)
        m.predictions.inc(n)
        m.batch_seconds.observe(seconds)
        m.latency.observe(time.time() - records.ts / 1000.0)
        learners = {"meta": status.meta, "baseline": status.baseline}
        for role in ROLES:
            learner = learners[role]
            m.loss.labels(role).set(learner.loss if learner else float("nan"))
            if step.proba is not None:
                m.accuracy.labels(role).set(learner.accuracy if learner else float("nan"))
        cuts = np.flatnonzero(step.boundary)
        if len(cuts):
            m.boundaries.inc(len(cuts))
            self._task_start = status.records - n + int(cuts[-1])
        m.task.set(int(step.task[-1]))
        m.task_age.set(status.records - self._task_start)
        for role, learner in learners.items():
            if learner is not None:
                self._closed(role, learner)
        if status.knows_concept:  # without the truth, every boundary would be an alarm
            self._count(m.missed, "missed", status.missed)
            self._count(m.false_alarms, "false_alarms", status.false_alarms)
        else:
            self._counted.update(missed=status.missed, false_alarms=status.false_alarms)
        if status.baseline is not None and (status.meta.closed or status.baseline.closed):
            m.speedup.set(status.speedup)
        self._meta_updates(status.meta_updates, status.meta_seconds)
        if status.learned is not None:
            self._learned(status.learned)

    def _closed(self, role: str, learner: LearnerStatus) -> None:
        """The tasks the batch closed: recovery, censoring, post-boundary loss, delay."""
        m = self.metrics
        for b in learner.closed:
            if b.recovery_samples is not None:
                m.recovery.labels(role).observe(b.recovery_samples)
            if b.censored:
                m.censored.labels(role).inc()
            if b.post_boundary_loss is not None and np.isfinite(b.post_boundary_loss):
                m.post_loss.labels(role).observe(b.post_boundary_loss)
            if role == "meta" and b.detection_delay is not None:
                m.detection_delay.observe(b.detection_delay)

    def _count(self, counter: Counter, key: str, total: float) -> None:
        """Increase ``counter`` by what the cumulative figure ``key`` grew since it was last
        counted."""
        counter.inc(max(0, total - self._counted.get(key, 0)))
        self._counted[key] = total

    def _meta_updates(self, updates: int, seconds: float) -> None:
        done, spent = self._meta
        if updates > done:
            self.metrics.meta_updates.inc(updates - done)
            each = (seconds - spent) / (updates - done)
            for _ in range(updates - done):
                self.metrics.meta_seconds.observe(each)
        self._meta = (updates, seconds)

    def _learned(self, figures: Mapping[str, float]) -> None:
        """The learner's own figures: learned rates, meta-loss, keys, the bank."""
        m = self.metrics
        if "meta_loss" in figures:
            m.meta_loss.set(figures["meta_loss"])
        if "lr_mean" in figures:
            m.lr_mean.set(figures["lr_mean"])
            m.lr_std.set(figures["lr_std"])
        if "keys_held" in figures:
            m.keys_held.set(figures["keys_held"])
            self._count(m.keys_evicted, "keys_evicted", int(figures["keys_evicted"]))
            if figures.get("keys_tasks_recovered", 0) > 0:
                m.keys_recovery.labels("0.5").set(figures["keys_recovery_samples_median"])
                m.keys_recovery.labels("0.9").set(figures["keys_recovery_samples_p90"])
        if "members_alive" in figures:
            m.members.set(figures["members_alive"])
            m.leader_age.set(figures["leader_age"])
            for i, origin in enumerate(ORIGINS):
                m.leader_origin.labels(origin).set(float(figures["leader_origin"] == i))
            m.entropy.set(figures["mixture_entropy"])
            m.memory_entries.set(figures["memory_size"])
            m.memory_bytes.set(figures["memory_bytes"])
            for key, metric in (
                ("candidates_detector", m.candidates.labels("detector")),
                ("candidates_schedule", m.candidates.labels("schedule")),
                ("boundaries_bank", m.bank_boundaries.labels("bank")),
                ("boundaries_explicit", m.bank_boundaries.labels("explicit")),
                ("recalls", m.recalls),
                ("recall_hits", m.recall_hits),
            ):
                self._count(metric, key, int(figures[key]))

    # --- the run loop -----------------------------------------------------------------------

    def on_poll(self, messages: int) -> None:
        self.metrics.polls.inc()
        self.readiness.polled()

    def on_dead_letters(self, reasons: Mapping[str, int]) -> None:
        self.readiness.processed()
        for reason, n in reasons.items():
            self.metrics.dead_letters.labels(reason).inc(n)
            self.metrics.records.labels("dead_letter").inc(n)

    def on_checkpoint(self, seconds: float) -> None:
        self.metrics.checkpoints.inc()
        self.metrics.checkpoint_seconds.observe(seconds)
        self.readiness.checkpointed()
        self.metrics.checkpoint_time.set(self.readiness.last_checkpoint)

    def on_commit_failure(self) -> None:
        self.metrics.commit_failures.inc()

    def on_rewind(self) -> None:
        self.metrics.rewinds.inc()

    def on_assigned(self, partitions: Iterable[Partition], held: int) -> None:
        self.metrics.rebalances.inc()
        self.readiness.partitions = held
        self.metrics.assigned.set(held)

    def on_revoked(self, partitions: Iterable[Partition], held: int) -> None:
        self.readiness.partitions = held
        self.metrics.assigned.set(held)
        for topic, partition in partitions:
            if (topic, str(partition)) in self._lag_series:
                self.metrics.lag.remove(topic, str(partition))
                self._lag_series.discard((topic, str(partition)))

    def on_lag(self, lag: Mapping[Partition, int]) -> None:
        for (topic, partition), behind in lag.items():
            self.metrics.lag.labels(topic, str(partition)).set(behind)
            self._lag_series.add((topic, str(partition)))

    def on_transient_errors(self, count: int) -> None:
        self.metrics.transient_errors.inc(count)

    def on_meta_sync(self, figures: dict[str, float]) -> None:
        m = self.metrics
        self._count(m.meta_merges, "meta_merges", figures["meta_merges"])
        self._count(m.meta_malformed, "meta_malformed", figures["meta_malformed"])
        m.meta_peers.set(figures["meta_peers"])
        m.meta_distance.set(figures["meta_distance"])
        if figures["meta_peer_age_seconds"] == figures["meta_peer_age_seconds"]:  # a peer seen
            m.meta_peer_age.set(figures["meta_peer_age_seconds"])

    def on_labels(self, figures: dict[str, float]) -> None:
        m = self.metrics
        m.labels_held.set(figures["labels_held"])
        self._count(m.labels_joined, "labels_joined", figures["labels_joined"])
        self._count(m.labels_expired, "labels_expired", figures["labels_expired"])
        self._count(
            m.labels_other_partition, "labels_other_partition", figures["labels_other_partition"]
        )
        if figures["delayed_accuracy"] == figures["delayed_accuracy"]:  # not NaN
            m.delayed_accuracy.set(figures["delayed_accuracy"])

    def on_health(self, reachable: bool, trouble: str | None) -> None:
        self.readiness.trouble = trouble
        self.metrics.broker_up.set(int(reachable))

    def on_output_failure(self, kind: str) -> None:
        self.metrics.output_failures.labels(kind).inc()

    def on_offset_reset(self, partition: Partition) -> None:
        self.metrics.offset_resets.inc()

    def on_backpressure(self, paused: bool) -> None:
        self.metrics.input_paused.set(int(paused))
        if paused:
            self.metrics.pauses.inc()
