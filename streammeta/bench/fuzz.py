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
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streammeta.bench.crash import read_topic, start_service
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

#: ``kafka.max_message_bytes`` of the service under test (its default).
MAX_MESSAGE_BYTES = 1_000_000
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
#: Dead-letter headers read here.
REASON, OFFSET = "streammeta.reason", "streammeta.offset"


@dataclass
class _Answers:
    """What came back, per input offset: the prediction indices (-1: a single object; None:
    an id that does not say) and the dead-letter reasons, plus what broke the rules."""

    predictions: defaultdict[int, list[int | None]] = field(
        default_factory=lambda: defaultdict(list)
    )
    dead: defaultdict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    not_strict: list[str] = field(default_factory=list)
    too_large: list[int] = field(default_factory=list)
    stray_predictions: int = 0  # without an offset that was sent
    stray_dead: int = 0


def _strict(value: bytes | None) -> dict[str, Any]:
    """A prediction parsed as strict JSON: UTF-8, no ``NaN``/``Infinity``, no lone
    surrogates; raises ``ValueError`` otherwise."""

    def reject(token: str) -> Any:
        raise ValueError(f"non-strict token {token}")

    out = json.loads((value or b"").decode("utf-8"), parse_constant=reject)
    json.dumps(out, ensure_ascii=False).encode("utf-8")  # UnicodeEncodeError: a lone surrogate
    if type(out) is not dict:
        raise ValueError(f"a JSON {type(out).__name__}, not an object")
    return out


def _read_answers(cfg: KafkaConfig, expected: dict[int, tuple[str, Message]]) -> _Answers:
    got = _Answers()
    for m in read_topic(cfg, cfg.output_topic):
        try:
            out = _strict(m.value)
        except ValueError as exc:
            got.not_strict.append(f"output offset {m.offset}: {exc}"[:300])
            try:
                out = json.loads(m.value or b"")
            except ValueError:
                out = {}
        offset = out.get("offset") if type(out) is dict else None
        if offset not in expected:
            got.stray_predictions += 1
            continue
        batch = expected[offset][1].good not in ((), (-1,))
        got.predictions[offset].append(_index(out.get("id")) if batch else -1)
    for m in read_topic(cfg, cfg.dlq_topic):
        size = len(m.value or b"") + len(m.key or b"")
        if size + sum(len(k.encode()) + len(v) for k, v in m.headers) > MAX_MESSAGE_BYTES:
            got.too_large.append(m.offset)
        headers = dict(m.headers)
        offset = headers.get(OFFSET, b"").decode("ascii", "replace")
        if not offset.isdigit() or int(offset) not in expected:
            got.stray_dead += 1
            continue
        got.dead[int(offset)].append(headers.get(REASON, b"").decode("utf-8", "replace"))
    return got


def _index(record_id: object) -> int | None:
    """The batch index in a default id ``topic:partition:offset:index``."""
    tail = str(record_id).rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _kind_rows(expected: dict[int, tuple[str, Message]], got: _Answers) -> dict[str, Any]:
    """Per kind: what was sent and expected, what came back, and whether it is right."""
    rows: dict[str, Any] = {}
    for offset, (name, msg) in expected.items():
        row = rows.setdefault(name, _new_row(msg.expect))
        preds, dead = got.predictions.get(offset, []), got.dead.get(offset, [])
        row["sent"] += 1
        row["expected_predictions"] += len(msg.good)
        row["predictions"] += len(preds)
        row["expected_dead_letters"] += msg.dead
        row["dead_letters"] += len(dead)
        row["reasons"].update(reason or "(none)" for reason in dead)
        counts = Counter(preds)
        row["wrong_good"] += any(counts[i] != 1 for i in msg.good)
        row["wrong_dead"] += (
            len(dead) != msg.dead or not all(dead) or bool(set(counts) - {*msg.good})
        )
    for row in rows.values():
        row["ok"] = not (row["wrong_good"] or row["wrong_dead"])
        row["reasons"] = dict(row["reasons"])
    order = ["good_record", *KINDS]
    return {name: rows[name] for name in sorted(rows, key=order.index)}


def _new_row(expect: str) -> dict[str, Any]:
    return {
        "expect": expect,
        "sent": 0,
        "expected_predictions": 0,
        "predictions": 0,
        "expected_dead_letters": 0,
        "dead_letters": 0,
        "reasons": Counter(),
        "wrong_good": 0,  # messages whose good records did not get exactly one prediction each
        "wrong_dead": 0,  # messages whose bad records did not get exactly one dead letter each
    }


def _checks(rows: dict[str, Any], got: _Answers, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def failing(column: str) -> list[str]:
        return sorted(name for name, row in rows.items() if row[column])

    bad_good, bad_dead = failing("wrong_good"), failing("wrong_dead")
    failed_rounds = [r["round"] for r in rounds if r["returncode"] != 0 or not r["drained"]]
    return {
        "good_records_predicted_once": {
            "ok": not bad_good and not got.stray_predictions,
            "failing_kinds": bad_good,
            "predictions_of_no_input": got.stray_predictions,
        },
        "bad_records_dead_lettered_once": {
            "ok": not bad_dead and not got.stray_dead,
            "failing_kinds": bad_dead,
            "dead_letters_of_no_input": got.stray_dead,
        },
        "service_never_failed": {"ok": not failed_rounds, "failed_rounds": failed_rounds},
        "predictions_strict_json": {"ok": not got.not_strict, "violations": got.not_strict[:20]},
        "dead_letters_fit": {
            "ok": not got.too_large,
            "max_message_bytes": MAX_MESSAGE_BYTES,
            "oversized_offsets": got.too_large[:20],
        },
    }


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


def _markdown(summary: dict[str, Any]) -> str:
    lines = [
        "# streammeta fuzz benchmark\n",
        f"{summary['messages']:,} messages ({summary['good_records']:,} good records, "
        f"{summary['distinct_kinds']} kinds of other messages) in {len(summary['rounds'])} "
        f"rounds, client {summary['client']}, seed {summary['seed']}: "
        f"**{'ok' if summary['ok'] else 'FAILED'}**\n",
        "| check | ok |",
        "|---|---|",
        *(f"| {name} | {'yes' if c['ok'] else 'NO'} |" for name, c in summary["checks"].items()),
        "",
        "| kind | expect | sent | predicted (expected) | dead letters (expected) | reasons | ok |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for name, r in summary["kinds"].items():
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r["reasons"].items())) or "-"
        lines.append(
            f"| {name} | {r['expect']} | {r['sent']:,} | {r['predictions']:,} "
            f"({r['expected_predictions']:,}) | {r['dead_letters']:,} "
            f"({r['expected_dead_letters']:,}) | {reasons} | {'yes' if r['ok'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


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
                got = _read_answers(dataclasses.replace(cfg, group=f"{cfg.group}-check"), expected)
                rows = _kind_rows(expected, got)
                log(
                    f"round {r}/{rounds}: {len(messages):,} messages sent; service exit "
                    f"{result['returncode']} after {result['seconds']:.1f} s, committed "
                    f"{result['committed']} of {len(expected):,}; kinds failing so far: "
                    f"{sum(not row['ok'] for row in rows.values())} of {len(rows)}"
                )
    checks = _checks(rows, got, results)
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
    (out / "summary.md").write_text(_markdown(summary))
    log(_markdown(summary))
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
