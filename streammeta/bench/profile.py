"""Where the service's time goes: the service end to end on the embedded broker under cProfile,
the time of each function counted once (its own time, ``tottime``) and summed by the part of
the data path it belongs to.

>>> area("/x/streammeta/io/decode.py", "decode"), area("/x/torch/_functorch/vmap.py", "fn")
('decode and encode', 'torch (functorch: vmap, grad)')
>>> area("~", "<built-in method torch._C._nn.linear>")
'torch ops (C)'
"""

from __future__ import annotations

import cProfile
import dataclasses
import pstats
import time
import uuid
from pathlib import Path
from typing import Any

from streammeta.bench.kafka_throughput import TASK_LENGTH, service_config, tagged_topics
from streammeta.config import Config
from streammeta.io import EmbeddedBroker, ensure_topics, open_sink
from streammeta.io.kafka import resolve_client
from streammeta.io.simulate import publish
from streammeta.runtime.service import build_service
from streammeta.streams import make_stream

__all__ = ["AREAS", "area", "profile_service"]

#: (part of a file's path, the area it is counted in), first match wins
AREAS: tuple[tuple[str, str], ...] = (
    ("streammeta/io/decode", "decode and encode"),
    ("streammeta/io/encode", "decode and encode"),
    ("streammeta/io/messages", "decode and encode"),
    ("streammeta/io/features", "decode and encode"),
    ("streammeta/io/targets", "decode and encode"),
    ("streammeta/io/columns", "decode and encode"),
    ("streammeta/io/labels", "decode and encode"),
    ("json/", "decode and encode"),
    ("streammeta/io/", "Kafka client (streammeta side)"),
    ("kafka/", "Kafka client (kafka-python)"),
    ("confluent_kafka", "Kafka client (confluent)"),
    ("streammeta/learn/trainer", "meta-updates (streammeta side)"),
    ("streammeta/learn/meta", "meta-updates (streammeta side)"),
    ("streammeta/learn/", "learner: predict and inner steps (streammeta side)"),
    ("streammeta/segment/", "segmentation"),
    ("river/", "segmentation"),
    ("streammeta/metrics/", "adaptation tracking"),
    ("streammeta/runtime/", "run loop, checkpoints"),
    ("torch/_functorch", "torch (functorch: vmap, grad)"),
    ("torch/", "torch (other)"),
    ("numpy/", "numpy"),
    ("selectors", "waiting on sockets"),
    ("socket", "waiting on sockets"),
    ("threading", "threads, locks"),
)

#: C functions (no file), by a part of their name
_C_CALLS: tuple[tuple[str, str], ...] = (
    ("cimpl", "Kafka client (confluent; poll waits, group join)"),
    ("run_backward", "torch autograd backward (meta-updates, inner-step gradients)"),
    ("torch", "torch ops (C)"),
    ("Tensor", "torch ops (C)"),
    ("json", "decode and encode"),
)


def area(filename: str, function: str) -> str:
    """The area a function's own time counts in."""
    path = filename.replace("\\", "/")
    for part, name in AREAS:
        if part in path:
            return name
    if path.startswith("~"):  # a C function: told apart by its name
        for part, name in _C_CALLS:
            if part in function:
                return name
        return "Python builtins"
    return "other Python"


def profile_service(config: Config, out: Path, *, records: int = 5_000) -> dict[str, Any]:
    """Run the service on ``records`` single-record messages of a sinusoid stream (drifting
    every 10,000 records) under cProfile; write ``profile.pstats`` and ``profile.md`` to
    ``out`` and return the seconds per area and the top functions."""
    out.mkdir(parents=True, exist_ok=True)
    values = list(make_stream("sinusoid", task_length=TASK_LENGTH, seed=0).records(records))
    with EmbeddedBroker() as broker:
        kafka = tagged_topics(
            dataclasses.replace(
                config.kafka, bootstrap_servers=broker.bootstrap, session_timeout_ms=6000
            ),
            uuid.uuid4().hex[:8],
        )
        ensure_topics(kafka, [kafka.input_topic, kafka.output_topic, kafka.dlq_topic])
        with open_sink(kafka) as sink:
            publish(sink, kafka.input_topic, values, batch_size=1)
        service = build_service(service_config(config, kafka, {}))
        profiler = cProfile.Profile()
        began = time.perf_counter()
        profiler.enable()
        stats = service.run(max_records=records)
        profiler.disable()
        seconds = time.perf_counter() - began
    profiler.dump_stats(out / "profile.pstats")
    table = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    areas: dict[str, float] = {}
    functions = []
    for (filename, line, function), (_, _, tottime, _, _) in table.items():
        name = area(filename, function)
        areas[name] = areas.get(name, 0.0) + tottime
        functions.append((tottime, f"{Path(filename).name}:{line} {function}", name))
    functions.sort(reverse=True)
    result = {
        "records": stats.records,
        "seconds": seconds,
        "records_per_s": stats.records / seconds,
        "client": resolve_client(kafka.client),
        "areas": dict(sorted(areas.items(), key=lambda kv: -kv[1])),
        "top": [{"seconds": t, "function": f, "area": a} for t, f, a in functions[:25]],
    }
    (out / "profile.md").write_text(profile_table(result) + "\n")
    return result


def profile_table(result: dict[str, Any]) -> str:
    total = sum(result["areas"].values())
    lines = [
        f"{result['records']:,} single-record messages through the service on the embedded "
        f"broker ({result['client']} client), under cProfile: {result['seconds']:.1f} s, "
        f"{result['records_per_s']:,.0f} records/s (cProfile slows Python calls).",
        "",
        "| area | seconds (own time) | share |",
        "|---|---:|---:|",
        *(f"| {a} | {s:.2f} | {s / total:.0%} |" for a, s in result["areas"].items()),
        "",
        "| function | seconds (own time) | area |",
        "|---|---:|---|",
        *(f"| `{t['function']}` | {t['seconds']:.2f} | {t['area']} |" for t in result["top"]),
    ]
    return "\n".join(lines)
