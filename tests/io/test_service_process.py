"""The service as a process on the embedded broker: SIGTERM exits cleanly within the grace
period; kill -9 mid-stream and a restart lose nothing and relearn nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch

from streammeta.bench.streams import make_stream
from streammeta.config import KafkaConfig
from streammeta.io import RawMessage, ensure_topics, open_source
from streammeta.io.simulate import encode
from tests.io.helpers import produce

Config = Callable[..., KafkaConfig]
GRACE_S = 20.0


def _start(cfg: KafkaConfig, checkpoints: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "streammeta.cli", "run",
            "--bootstrap-servers", cfg.bootstrap_servers,
            "--input-topic", cfg.input_topic,
            "--output-topic", cfg.output_topic,
            "--dlq-topic", cfg.dlq_topic,
            "--group", cfg.group,
            "--checkpoint-dir", str(checkpoints),
            "--kafka.client", "kafka-python",
            "--kafka.session_timeout_ms", str(cfg.session_timeout_ms),
            *extra,
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _setup(cfg: KafkaConfig, n: int) -> int:
    """``n`` records in single-record messages, one malformed message every 250th."""
    ensure_topics(cfg, [cfg.input_topic, cfg.output_topic, cfg.dlq_topic])
    values = []
    for i, rec in enumerate(make_stream("sinusoid", seed=5).records(n)):
        values.append(encode([rec])[0])
        if i % 250 == 249:
            values.append(b"{broken")
    produce(cfg, "kafka-python", values)
    return len(values)


def _read(cfg: KafkaConfig, topic: str, timeout_s: float = 60) -> list[RawMessage]:
    """Everything in ``topic`` (up to its high watermark)."""
    with open_source(cfg, client="kafka-python") as src:
        src.assign([(topic, 0)])
        got: list[RawMessage] = []
        deadline = time.monotonic() + timeout_s
        while True:
            got += src.poll(500, 0.2)
            high = src.highwater((topic, 0))
            if high is not None and len(got) >= high:
                return got
            assert time.monotonic() < deadline, f"{len(got)} of {high} messages of {topic}"


def _answers(cfg: KafkaConfig) -> Counter[int]:
    """How many predictions or dead letters each input offset got."""
    seen: Counter[int] = Counter()
    for m in _read(cfg, cfg.output_topic):
        seen[json.loads(m.value)["offset"]] += 1
    for m in _read(cfg, cfg.dlq_topic):
        seen[int(dict(m.headers)["streammeta.offset"])] += 1
    return seen


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
    proc = _start(cfg, tmp_path, "--service.checkpoint_records", "500")
    _wait_for(tmp_path / "checkpoint.pt")  # it is consuming
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=GRACE_S)
    assert proc.returncode == 0, err[-2000:]
    assert "records" in out and "checkpoints" in out
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    done = state["offsets"][0][2]  # the next offset it would read
    assert 0 < done <= total
    with open_source(cfg, client="kafka-python") as src:
        assert src.committed([(cfg.input_topic, 0)]) == {(cfg.input_topic, 0): done}


def test_kill_9_and_restart_lose_nothing_and_relearn_nothing(
    kafka_cfg: Config, tmp_path: Path
) -> None:
    cfg = kafka_cfg(session_timeout_ms=3000)
    total = _setup(cfg, 6000)
    every = 400
    first = _start(cfg, tmp_path, "--service.checkpoint_records", str(every))
    _wait_for(tmp_path / "checkpoint.pt")
    time.sleep(1.0)  # well into the stream, between checkpoints
    first.kill()  # SIGKILL: no drain, no final checkpoint
    first.wait(timeout=GRACE_S)
    restored = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    good = total - total // 251
    assert 0 < restored["state"]["records"] < good  # killed mid-stream
    second = _start(cfg, tmp_path, "--service.checkpoint_records", str(every), "--idle-exit", "3")
    _, err = second.communicate(timeout=180)
    assert second.returncode == 0, err[-2000:]
    assert f"restored checkpoint at {restored['state']['records']} records" in err
    seen = _answers(cfg)
    assert sorted(seen) == list(range(total))  # every input offset answered
    repeated = [o for o, c in seen.items() if c > 1]
    assert max(seen.values()) <= 2 and len(repeated) <= every + 500  # one interval at most
    final = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert final["state"]["records"] == good  # every good record learned exactly once
