"""The service as a process on the embedded broker: SIGTERM exits cleanly within the grace
period; kill -9 mid-stream and a restart lose nothing and relearn nothing."""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from streammeta.bench.crash import answers, publish_with_bad, read_topic, start_service
from streammeta.config import KafkaConfig
from streammeta.io import ensure_topics, open_sink, open_source
from streammeta.io.simulate import encode
from streammeta.runtime.checkpoint import read_checkpoint
from streammeta.streams import make_stream

Config = Callable[..., KafkaConfig]
GRACE_S = 20.0


def _setup(cfg: KafkaConfig, n: int) -> int:
    """``n`` records in single-record messages, one malformed message every 250th."""
    return publish_with_bad(dataclasses.replace(cfg, client="kafka-python"), n, bad_every=250)


def _kp(cfg: KafkaConfig) -> KafkaConfig:
    return dataclasses.replace(cfg, client="kafka-python")


def _wait_for(path: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def test_sigterm_drains_checkpoints_commits_and_exits_cleanly(
    kafka_cfg: Config, tmp_path: Path
) -> None:
    cfg = kafka_cfg(session_timeout_ms=3000)
    total = _setup(cfg, 3000)
    proc = start_service(_kp(cfg), tmp_path, "--service.checkpoint_records", "500")
    _wait_for(tmp_path / "checkpoint.pt")  # it is consuming
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=GRACE_S)
    assert proc.returncode == 0, err[-2000:]
    assert "records" in out and "checkpoints" in out
    _, offsets, _ = read_checkpoint(tmp_path / "checkpoint.pt")
    done = offsets[cfg.input_topic, 0]  # the next offset it would read
    assert 0 < done <= total
    with open_source(cfg, client="kafka-python") as src:
        assert src.committed([(cfg.input_topic, 0)]) == {(cfg.input_topic, 0): done}


def test_kill_9_and_restart_lose_nothing_and_relearn_nothing(
    kafka_cfg: Config, tmp_path: Path
) -> None:
    cfg = kafka_cfg(session_timeout_ms=3000)
    total = _setup(cfg, 6000)
    every = 400
    first = start_service(_kp(cfg), tmp_path, "--service.checkpoint_records", str(every))
    _wait_for(tmp_path / "checkpoint.pt")
    time.sleep(1.0)  # well into the stream, between checkpoints
    first.kill()  # SIGKILL: no drain, no final checkpoint
    first.wait(timeout=GRACE_S)
    restored, _, _ = read_checkpoint(tmp_path / "checkpoint.pt")
    good = total - total // 251
    assert 0 < restored["records"] < good  # killed mid-stream
    second = start_service(
        _kp(cfg), tmp_path, "--service.checkpoint_records", str(every), "--idle-exit", "3"
    )
    _, err = second.communicate(timeout=180)
    assert second.returncode == 0, err[-2000:]
    assert f"restored checkpoint at {restored['records']} records" in err
    seen = answers(_kp(cfg))
    assert sorted(seen) == [(0, offset) for offset in range(total)]  # every input answered
    repeated = [o for o, c in seen.items() if c > 1]
    assert max(seen.values()) <= 2 and len(repeated) <= every + 500  # one interval at most
    final, _, _ = read_checkpoint(tmp_path / "checkpoint.pt")
    assert final["records"] == good  # every good record learned exactly once


def test_two_services_in_one_group_share_the_partitions_without_losing_records(
    kafka_cfg: Config, tmp_path: Path
) -> None:
    cfg = _kp(kafka_cfg(session_timeout_ms=3000))
    ensure_topics(cfg, [cfg.input_topic], partitions=2)
    ensure_topics(cfg, [cfg.output_topic, cfg.dlq_topic])
    records = list(make_stream("sinusoid", seed=6).records(4000))
    with open_sink(cfg) as sink:
        for i, rec in enumerate(records):
            sink.produce(
                cfg.input_topic, encode([{**rec, "key": f"k{i % 7}"}])[0], f"k{i % 7}".encode()
            )
        sink.flush(60)
    procs = [start_service(cfg, tmp_path / name, "--idle-exit", "4") for name in ("a", "b")]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-2000:]
    seen: Counter[tuple[int, int]] = Counter()
    for m in read_topic(cfg, cfg.output_topic):
        pred = json.loads(m.value or b"{}")
        seen[pred["partition"], pred["offset"]] += 1
    assert len(seen) == 4000  # every record of both partitions answered
    assert {p for p, _ in seen} == {0, 1}
    learned = [read_checkpoint(tmp_path / n / "checkpoint.pt")[0]["records"] for n in ("a", "b")]
    assert sum(learned) >= 4000 and min(learned) > 0  # both members did a share
