"""The crash benchmark for a group: ``instances`` learner services in one consumer group,
sharing their meta-state on a meta topic synced every ``sync_seconds`` (so that kills land during
merges too), one of them killed with SIGKILL at random points and restarted while the others
carry on; then every input message of every partition is checked for a prediction or a dead
letter, and each instance for a merge of its peers' state.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from pathlib import Path
from typing import Any

from streammeta.bench.crash import answers, crash_config, read_topic, start_service
from streammeta.io import EmbeddedBroker, ensure_topics, open_sink
from streammeta.io.simulate import encode
from streammeta.streams import make_stream

__all__ = ["run_group_crash_test"]


def run_group_crash_test(
    out: Path,
    *,
    instances: int = 2,
    kills: int = 10,
    records: int = 20_000,
    sync_seconds: float = 0.5,
    seed: int = 0,
    log: Any = print,
) -> dict[str, Any]:
    """Kill one instance of the group ``kills`` times, drain, check; write ``summary.json``."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with EmbeddedBroker(log_path=out / "broker.log") as broker:
        cfg = crash_config(broker, meta_topic=True)
        ensure_topics(cfg, [cfg.input_topic], partitions=2 * instances)
        ensure_topics(cfg, [cfg.output_topic, cfg.dlq_topic, cfg.meta_topic])
        with open_sink(cfg) as sink:
            for i, rec in enumerate(make_stream("sinusoid", seed=seed).records(records)):
                sink.produce(cfg.input_topic, encode([rec])[0], str(i % 97).encode())
                if i % 250 == 249:
                    sink.produce(cfg.input_topic, b"{broken", str(i % 97).encode())
        flags = ["--kafka.meta_topic", cfg.meta_topic, "--meta.sync_seconds", str(sync_seconds),
                 "--service.checkpoint_records", "500"]  # fmt: skip

        def start(j: int, *extra: str) -> Any:
            return start_service(cfg, out / f"instance-{j}", *flags, "--meta.instance", f"i{j}",
                                 *extra)  # fmt: skip

        procs = [start(j) for j in range(instances)]
        points = []
        for k in range(kills):
            delay = rng.uniform(3.0, 8.0)
            time.sleep(delay)
            victim = rng.randrange(instances)
            procs[victim].kill()
            procs[victim].wait()
            points.append({"after_s": round(delay, 2), "instance": victim})
            log(f"kill {k + 1:>2}/{kills}: instance {victim} after {delay:.1f} s")
            procs[victim] = start(victim)
        for proc in procs:  # the last kill of each: the drain below restarts them all
            proc.kill()
            proc.wait()
        last = [start(j, "--idle-exit", "5") for j in range(instances)]
        logs = []
        for proc in last:
            _, err = proc.communicate(timeout=900)
            if proc.returncode != 0:
                raise RuntimeError(f"a final run failed:\n{err[-2000:]}")
            logs.append(err)
        check = dataclasses.replace(cfg, group=cfg.group + "-check")
        inputs = {(m.partition, m.offset) for m in read_topic(check, cfg.input_topic)}
        seen = answers(check)
    lost = sorted(inputs - set(seen))
    warm = sum("warm start from the group's meta-state" in text for text in logs)
    summary = {
        "instances": instances,
        "kills": kills,
        "input_messages": len(inputs),
        "lost_offsets": len(lost),
        "duplicated_offsets": sum(1 for c in seen.values() if c > 1),
        "final_runs_warm_started": warm,
        "kill_points": points,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    log(
        f"{len(inputs):,} messages, {instances} instances, {kills} kills: {len(lost)} lost, "
        f"{summary['duplicated_offsets']:,} answered twice or more; {warm} of the final runs "
        "started from the group's meta-state"
    )
    return summary
