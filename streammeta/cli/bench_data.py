"""``streammeta bench keys``, ``bench late-labels`` and ``bench scale-out``: production topics,
with many keys on one stream, labels that arrive after their records, and more than one
instance in a group. The benchmarks are imported when one runs."""

from __future__ import annotations

import argparse

from streammeta.cli.options import add_out
from streammeta.config import Config

__all__ = [
    "keys",
    "keys_arguments",
    "late_labels",
    "late_labels_arguments",
    "scale_out",
    "scale_out_arguments",
]


def keys_arguments(parser: argparse.ArgumentParser) -> None:
    add_out(parser)
    parser.add_argument("--keys", type=int, default=200, help="keys, each its own concept "
                        "(default 200)")  # fmt: skip
    parser.add_argument(
        "--records", type=int, default=40_000, help="records over all keys (default 40,000)"
    )
    parser.add_argument(
        "--new-keys", type=int, default=50, help="keys never seen before, after (default 50)"
    )
    parser.add_argument(
        "--scale-keys",
        type=int,
        default=10_000,
        help="keys held at once for records/s and peak RSS, against no keys (default 10,000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="stream seed (default 0)")


def keys(config: Config, args: argparse.Namespace) -> int:
    from streammeta.bench.keys import run_keys

    run_keys(
        config, args.out, keys=args.keys, records=args.records, new_keys=args.new_keys,
        scale_keys=args.scale_keys, seed=args.seed,
    )  # fmt: skip
    print(f"results: {args.out / 'results.json'}")
    return 0


def late_labels_arguments(parser: argparse.ArgumentParser) -> None:
    add_out(parser, "summary.json")
    parser.add_argument("--records", type=int, default=20_000, help="records (default 20,000)")
    parser.add_argument(
        "--task-length",
        type=int,
        default=None,
        help="records between SEA's concept switches (default: the stream's, 1,000); a label "
        "delay costs accuracy after every switch, whatever the learner",
    )
    parser.add_argument(
        "--delay", type=int, default=500, help="records between a record and its label (500)"
    )
    parser.add_argument(
        "--kills", type=int, default=3, help="SIGKILLs of the delayed run (default 3)"
    )
    parser.add_argument(
        "--label-topic",
        action="store_true",
        help="publish the labels on a topic of their own (kafka.label_topic) instead of the "
        "input topic",
    )
    parser.add_argument("--seed", type=int, default=0, help="stream and kill seed (default 0)")


def late_labels(config: Config, args: argparse.Namespace) -> int:
    """Exit code 0 when every record was predicted and every label joined or dead-lettered."""
    from streammeta.bench.late_labels import run_late_labels

    summary = run_late_labels(
        args.out, records=args.records, delay=args.delay, kills=args.kills,
        task_length=args.task_length,
        label_topic=args.label_topic, seed=args.seed,
    )  # fmt: skip
    ok = summary["every_record_predicted"] and summary["every_label_joined_or_dead_lettered"]
    return 0 if ok else 1


def scale_out_arguments(parser: argparse.ArgumentParser) -> None:
    add_out(parser, "summary.json")
    parser.add_argument("--records", type=int, default=24_000, help="records (default 24,000)")
    parser.add_argument("--task-length", type=int, default=100, help="records a task (default 100)")
    parser.add_argument(
        "--sync-seconds", type=float, default=2.0, help="meta.sync_seconds (default 2)"
    )
    parser.add_argument("--seed", type=int, default=0, help="stream seed (default 0)")


def scale_out(config: Config, args: argparse.Namespace) -> int:
    from streammeta.bench.scale_out import run_scale_out

    run_scale_out(
        args.out, records=args.records, task_length=args.task_length,
        sync_seconds=args.sync_seconds, seed=args.seed,
    )  # fmt: skip
    print(f"results: {args.out / 'summary.json'}")
    return 0
