"""The fuzz benchmark: bad messages of many kinds mixed with good records, sent through the real
broker to ``streammeta run``, which is restarted between rounds.

Each round publishes ``records`` good records of the sinusoid stream and, at seeded random
positions among them, one message of every kind in :mod:`streammeta.bench.fuzz_kinds` (deep
nesting, lone surrogates, numbers that overflow float32, NaN tokens, messages over the size
limit, random bytes, truncated and mixed batches, wrong types, BOMs and other encodings,
tombstones, and valid oddities that must be accepted), as raw bytes through the Kafka sink.
Then it runs the service, a fresh process that resumes from the committed offsets and exits
once idle. Each kind says what the service must make of it: a prediction for each valid record
it holds, one dead letter for each invalid one. At the end it checks that

- every good record has exactly one prediction (matched by the prediction's ``offset`` and,
  in a batch message, by the index in its default ``id``);
- every bad one has exactly one dead letter, with a non-empty ``streammeta.reason`` header;
- the service never exited by itself with a non-zero code, nor before it had committed
  everything published;
- every prediction is strict JSON (UTF-8, no ``NaN`` or ``Infinity``);
- every dead letter fits: value, key and headers within ``kafka.max_message_bytes``.

``summary.json`` holds each check, each round and each kind (what was sent and expected, what
came back, the dead-letter reasons seen); ``summary.md`` the table. No kind is skipped: one
the service mishandles fails its row, its check and the run.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streammeta.bench.crash import start_service
from streammeta.bench.fuzz_checks import (
    MAX_MESSAGE_BYTES,
    kind_rows,
    markdown,
    read_answers,
    run_checks,
)
from streammeta.bench.fuzz_kinds import KINDS, Message, plan
from streammeta.config import KafkaConfig
from streammeta.io import (
    EmbeddedBroker,
    Sink,
    ensure_topics,
    open_sink,
    open_source,
    resolve_client,
)
from streammeta.streams import make_stream

__all__ = ["run_fuzz"]

#: The service's settings: named features may be sent as ``{"f0": ...}``.
SERVICE_FLAGS = (
    "--learner.n_features", "1",
    "--learner.feature_names", "f0",
    "--learner.baseline", "none",
    "--kafka.max_message_bytes", str(MAX_MESSAGE_BYTES),
    "--service.checkpoint_records", "1000",
)  # fmt: skip
#: Seconds without input after which the service exits (once it has drained the topic).
IDLE_EXIT_S = 5.0


def _service_round(cfg: KafkaConfig, checkpoints: Path, sent: int) -> dict[str, Any]:
    """Run the service until it exits by itself (or a timeout): its exit code, and whether it
    committed all ``sent`` messages."""
    start = time.monotonic()
    timeout_s = 60 + sent / 20
    proc = start_service(cfg, checkpoints, *SERVICE_FLAGS, "--idle-exit", str(IDLE_EXIT_S))
    try:
        _, err = proc.communicate(timeout=timeout_s)
        code: int | str = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        code = f"killed after {timeout_s:.0f} s"
    with open_source(cfg) as src:
        part = (cfg.input_topic, 0)
        committed = src.committed([part])[part]
    result: dict[str, Any] = {
        "returncode": code,
        "seconds": round(time.monotonic() - start, 1),
        "committed": committed,
        "sent": sent,
        "drained": committed == sent,
    }
    if code != 0 or not result["drained"]:
        result["stderr_tail"] = err[-3000:]
    return result


def _publish(sink: Sink, topic: str, messages: list[tuple[str, Message]]) -> None:
    for _, msg in messages:
        sink.produce(topic, msg.value, msg.key)  # type: ignore[arg-type]  # tombstones: None
    sink.flush(120)


def run_fuzz(
    out: Path,
    *,
    rounds: int = 5,
    records: int = 2000,
    seed: int = 0,
    client: str = "auto",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run ``rounds`` rounds of ``records`` good records and one message of every kind, the
    service restarted each round; check, write ``summary.json`` and ``summary.md``, and return
    the summary (``ok``: every check passed)."""
    if rounds < 1 or records < 0:
        raise ValueError(f"rounds={rounds!r}, records={records!r}: need rounds >= 1, records >= 0")
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # a run starts fresh
    rng = random.Random(seed)
    stream = make_stream("sinusoid", seed=seed).records(records * rounds)
    started = time.monotonic()
    expected: dict[int, tuple[str, Message]] = {}  # input offset -> kind, message
    results: list[dict[str, Any]] = []
    with EmbeddedBroker(log_path=out / "broker.log") as broker:
        cfg = _topics(broker, client)
        with open_sink(dataclasses.replace(cfg, max_message_bytes=3 * MAX_MESSAGE_BYTES)) as sink:
            for r in range(1, rounds + 1):
                messages = plan(rng, stream, records)
                _publish(sink, cfg.input_topic, messages)
                expected.update(enumerate(messages, start=len(expected)))
                result = {"round": r, **_service_round(cfg, out / "checkpoints", len(expected))}
                results.append(result)
                got = read_answers(dataclasses.replace(cfg, group=f"{cfg.group}-check"), expected)
                rows = kind_rows(expected, got)
                log(
                    f"round {r}/{rounds}: {len(messages):,} messages sent; service exit "
                    f"{result['returncode']} after {result['seconds']:.1f} s, committed "
                    f"{result['committed']} of {len(expected):,}; kinds failing so far: "
                    f"{sum(not row['ok'] for row in rows.values())} of {len(rows)}"
                )
    checks = run_checks(rows, got, results)
    summary = {
        "ok": all(c["ok"] for c in checks.values()),
        "checks": checks,
        "distinct_kinds": len(KINDS),
        "messages": len(expected),
        "good_records": records * rounds,
        "client": resolve_client(client),
        "seed": seed,
        "seconds": round(time.monotonic() - started, 1),
        "rounds": results,
        "kinds": rows,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(markdown(summary))
    log(markdown(summary))
    return summary


def _topics(broker: EmbeddedBroker, client: str) -> KafkaConfig:
    """Fresh topics and group on ``broker``, created."""
    tag = uuid.uuid4().hex[:8]
    cfg = KafkaConfig(
        bootstrap_servers=broker.bootstrap,
        client=client,
        input_topic=f"fuzz-in-{tag}",
        output_topic=f"fuzz-out-{tag}",
        dlq_topic=f"fuzz-dlq-{tag}",
        group=f"fuzz-{tag}",
        session_timeout_ms=3000,
    )
    ensure_topics(cfg, [cfg.input_topic, cfg.output_topic, cfg.dlq_topic])
    return cfg
