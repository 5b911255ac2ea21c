"""What came back from the fuzz benchmark's service and the checks on it: per input offset the
predictions and dead letters read from the output topics, per kind what was sent, expected and
returned, the run's checks and its Markdown table.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from streammeta.bench.crash import read_topic
from streammeta.bench.fuzz_kinds import KINDS, Message
from streammeta.config import KafkaConfig

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Answers",
    "kind_rows",
    "markdown",
    "read_answers",
    "run_checks",
    "strict",
]

#: ``kafka.max_message_bytes`` of the service under test (its default).
MAX_MESSAGE_BYTES = 1_000_000
#: Dead-letter headers read here.
REASON, OFFSET = "streammeta.reason", "streammeta.offset"


@dataclass
class Answers:
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


def strict(value: bytes | None) -> dict[str, Any]:
    """A prediction parsed as strict JSON: UTF-8, no ``NaN``/``Infinity``, no lone
    surrogates; raises ``ValueError`` otherwise."""

    def reject(token: str) -> Any:
        raise ValueError(f"non-strict token {token}")

    out = json.loads((value or b"").decode("utf-8"), parse_constant=reject)
    json.dumps(out, ensure_ascii=False).encode("utf-8")  # UnicodeEncodeError: a lone surrogate
    if type(out) is not dict:
        raise ValueError(f"a JSON {type(out).__name__}, not an object")
    return out


def read_answers(cfg: KafkaConfig, expected: dict[int, tuple[str, Message]]) -> Answers:
    got = Answers()
    for m in read_topic(cfg, cfg.output_topic):
        try:
            out = strict(m.value)
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


def kind_rows(expected: dict[int, tuple[str, Message]], got: Answers) -> dict[str, Any]:
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


def run_checks(rows: dict[str, Any], got: Answers, rounds: list[dict[str, Any]]) -> dict[str, Any]:
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


def markdown(summary: dict[str, Any]) -> str:
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
