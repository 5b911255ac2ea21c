"""The crash benchmark: the learner service killed with SIGKILL at random points and restarted,
on the embedded broker, then every input offset checked for a prediction or a dead letter.

Each round starts ``streammeta run`` and kills it after a random delay (start-up included, so
some kills land before the first checkpoint, some between checkpoints); a last run drains the
topic. It reports lost offsets (must be none), duplicated answers (allowed within one
checkpoint interval of each kill) and whether the learner learned every good record exactly
once (the final checkpoint's record count).
"""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import IO, Any

from streammeta.config import KafkaConfig
from streammeta.io import EmbeddedBroker, RawMessage, ensure_topics, open_sink, open_source
from streammeta.io.simulate import encode
from streammeta.runtime.checkpoint import read_checkpoint
from streammeta.streams import make_stream

__all__ = [
    "answers",
    "checkpoint_state",
    "crash_config",
    "read_topic",
    "run_crash_test",
    "start_service",
]


def start_service(
    cfg: KafkaConfig, checkpoints: Path, *extra: str, log: IO[str] | None = None
) -> subprocess.Popen[str]:
    """``streammeta run`` on ``cfg``'s topics and client as a child process; its output goes
    to pipes, or to ``log`` (for a long run, whose logs would fill a pipe nobody reads)."""
    return subprocess.Popen(
        [
            sys.executable, "-m", "streammeta.cli", "run",
            "--bootstrap-servers", cfg.bootstrap_servers,
            "--input-topic", cfg.input_topic,
            "--output-topic", cfg.output_topic,
            "--dlq-topic", cfg.dlq_topic,
            "--group", cfg.group,
            "--checkpoint-dir", str(checkpoints),
            "--kafka.client", cfg.client,
            "--kafka.session_timeout_ms", str(cfg.session_timeout_ms),
            *extra,
        ],
        stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT if log else subprocess.PIPE,
        text=True,
    )  # fmt: skip


def read_topic(cfg: KafkaConfig, topic: str, timeout_s: float = 60) -> list[RawMessage]:
    """Everything in every partition of ``topic``, up to each high watermark (a topic the
    producer auto-created may have several partitions)."""
    with open_source(cfg) as src:
        deadline = time.monotonic() + timeout_s
        numbers = src.partitions(topic)
        while not numbers and time.monotonic() < deadline:  # metadata may not be there yet
            time.sleep(0.2)
            numbers = src.partitions(topic)
        parts = [(topic, p) for p in numbers or [0]]
        src.assign(parts)
        got: Counter[tuple[str, int]] = Counter()
        out: list[RawMessage] = []
        while True:
            batch = src.poll(500, 0.2)
            out += batch
            got.update((m.topic, m.partition) for m in batch)
            highs = {tp: src.highwater(tp) for tp in parts}
            if all(h is not None and got[tp] >= h for tp, h in highs.items()):
                return out
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(out)} of {highs} messages of {topic} in {timeout_s} s")


def answers(cfg: KafkaConfig) -> Counter[tuple[int, int]]:
    """How many predictions or dead letters each input (partition, offset) got."""
    seen: Counter[tuple[int, int]] = Counter()
    for m in read_topic(cfg, cfg.output_topic):
        p = json.loads(m.value or b"{}")
        seen[p["partition"], p["offset"]] += 1
    for m in read_topic(cfg, cfg.dlq_topic):
        h = dict(m.headers)
        seen[int(h["streammeta.partition"]), int(h["streammeta.offset"])] += 1
    return seen


def publish_with_bad(cfg: KafkaConfig, records: int, bad_every: int, seed: int = 5) -> int:
    """``records`` sinusoid records, one malformed message after every ``bad_every``; returns
    the number of messages."""
    ensure_topics(cfg, [cfg.input_topic, cfg.output_topic, cfg.dlq_topic])
    with open_sink(cfg) as sink:
        n = 0
        for i, rec in enumerate(make_stream("sinusoid", seed=seed).records(records)):
            sink.produce(cfg.input_topic, encode([rec])[0])
            n += 1
            if i % bad_every == bad_every - 1:
                sink.produce(cfg.input_topic, b"{broken")
                n += 1
        sink.flush(60)
    return n


def crash_config(broker: EmbeddedBroker, *, meta_topic: bool = False) -> KafkaConfig:
    """Fresh topics and group on ``broker`` for one crash run (kafka-python, a 3 s session
    timeout so that a killed member leaves the group soon); a meta topic if asked."""
    tag = uuid.uuid4().hex[:8]
    return KafkaConfig(
        bootstrap_servers=broker.bootstrap, client="kafka-python", input_topic=f"in-{tag}",
        output_topic=f"out-{tag}", dlq_topic=f"dlq-{tag}", group=f"crash-{tag}",
        session_timeout_ms=3000, meta_topic=f"meta-{tag}" if meta_topic else "",
    )  # fmt: skip


def run_crash_test(
    out: Path,
    *,
    kills: int = 20,
    records: int = 20_000,
    checkpoint_records: int = 500,
    seed: int = 0,
    log: Any = print,
) -> dict[str, Any]:
    """Kill and restart the service ``kills`` times, drain, check; write ``summary.json``."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with EmbeddedBroker(log_path=out / "broker.log") as broker:
        cfg = crash_config(broker)
        total = publish_with_bad(cfg, records, bad_every=250)
        checkpoints = out / "checkpoints"
        every = ["--service.checkpoint_records", str(checkpoint_records)]
        points = []
        for k in range(kills):
            proc = start_service(cfg, checkpoints, *every)
            delay = rng.uniform(2.0, 7.0)
            time.sleep(delay)
            finished = proc.poll() is not None
            proc.kill()
            proc.wait()
            state = _checkpoint(checkpoints)
            points.append(
                {"after_s": round(delay, 2), "checkpointed_records": state, "finished": finished}
            )
            log(f"kill {k + 1:>2}/{kills} after {delay:.1f} s: checkpoint at {state:,} records")
        last = start_service(cfg, checkpoints, *every, "--idle-exit", "3")
        _, err = last.communicate(timeout=600)
        if last.returncode != 0:
            raise RuntimeError(f"the final run failed:\n{err[-2000:]}")
        seen = answers(dataclasses.replace(cfg, group=cfg.group + "-check"))
    good = records
    learned = _checkpoint(checkpoints)
    lost = sorted({(0, offset) for offset in range(total)} - set(seen))
    summary = {
        "kills": kills,
        "input_messages": total,
        "good_records": good,
        "checkpoint_records": checkpoint_records,
        "lost_offsets": len(lost),
        "duplicated_offsets": sum(1 for c in seen.values() if c > 1),
        "max_answers_per_offset": max(seen.values()) if seen else 0,
        "learned_records": learned,
        "learned_each_exactly_once": learned == good,
        "kill_points": points,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    log(
        f"{total:,} messages, {kills} kills: {len(lost)} lost, "
        f"{summary['duplicated_offsets']:,} answered twice or more, learned {learned:,} of "
        f"{good:,} good records"
    )
    return summary


def checkpoint_state(directory: Path) -> dict[str, Any]:
    """The state of the checkpoint in ``directory`` (``{}`` before the first)."""
    path = directory / "checkpoint.pt"
    return read_checkpoint(path)[0] if path.exists() else {}


def _checkpoint(directory: Path) -> int:
    """Records learned as of the checkpoint in ``directory`` (0 before the first)."""
    return int(checkpoint_state(directory).get("records", 0))
