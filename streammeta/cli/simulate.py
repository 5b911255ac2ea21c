"""``streammeta simulate``: publish a seeded drifting stream to the input topic. The stream and
the Kafka client are imported when the command runs."""

from __future__ import annotations

import argparse
import sys

from streammeta.cli.options import BROKERS, LOGGING, has_brokers
from streammeta.cli.parser import Alias
from streammeta.config import Config, ConfigError
from streammeta.logs import setup_logging
from streammeta.registry import STREAMS

__all__ = ["ALIASES", "arguments", "simulate"]

#: Short options of the config keys ``simulate`` reads.
ALIASES: tuple[Alias, ...] = (
    BROKERS,
    ("--topic", "kafka.input_topic", "TOPIC", "topic to publish to"),
    ("--label-topic", "kafka.label_topic", "TOPIC", "topic of delayed labels (--label-delay)"),
    ("--stream", "stream.name", "NAME", "stream generator, one of: " + ", ".join(STREAMS.names)),
    ("--records", "stream.records", "N", "records to publish"),
    ("--seed", "stream.seed", "S", ""),
    ("--task-length", "stream.task_length", "N", ""),
    ("--client", "kafka.client", "", ""),
    *LOGGING,
)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="at most this many records per second (default 0: as fast as possible)",
    )
    parser.add_argument(
        "--truth",
        choices=("task", "concept"),
        default="task",
        help="field the stream's true concept goes in: 'task' (explicit tasks: the learner cuts "
        "at every switch) or 'concept' (evaluation only: the segmenter must detect the "
        "switches, and detection delay is measured) (default task)",
    )
    parser.add_argument(
        "--label-delay",
        type=int,
        default=-1,
        metavar="N",
        help='publish each record without its y and its label ({"id", "y"}) N records '
        "later, to kafka.label_topic when set, else to the input topic (default: labels "
        "inside the records)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="records per message; above 1 publishes JSON arrays (batch messages) (default 1)",
    )


def simulate(config: Config, args: argparse.Namespace) -> int:
    """Publish the configured stream to the input topic."""
    kafka, stream = config.kafka, config.stream
    if not has_brokers(config, "simulate"):
        return 2
    setup_logging(config.log)
    if args.batch_size < 1 or args.rate < 0 or args.label_delay < -1:
        print(
            f"streammeta: --batch-size {args.batch_size} --rate {args.rate:g} --label-delay "
            f"{args.label_delay}: the batch size must be at least 1, the rate at least 0 "
            "(0 = unlimited) and the label delay at least 0 records",
            file=sys.stderr,
        )
        return 2

    from streammeta.io import KafkaIOError, ensure_topics, open_sink
    from streammeta.io.simulate import delay_labels, publish
    from streammeta.streams import make_stream

    records = make_stream(stream.name, task_length=stream.task_length, seed=stream.seed).records(
        stream.records, truth=args.truth
    )
    if args.label_delay >= 0:
        records = delay_labels(records, args.label_delay, prefix=f"s{stream.seed}-")

    def progress(sent: int, seconds: float) -> None:
        rate = sent / seconds if seconds > 0 else 0.0
        print(f"simulate: {sent:,}/{stream.records:,} records ({rate:,.0f}/s)", flush=True)

    try:
        ensure_topics(kafka, [kafka.input_topic, *filter(None, [kafka.label_topic])])
        with open_sink(kafka) as sink:
            done = publish(
                sink,
                kafka.input_topic,
                records,
                batch_size=args.batch_size,
                rate=args.rate,
                progress=progress,
                label_topic=kafka.label_topic if args.label_delay >= 0 else "",
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
