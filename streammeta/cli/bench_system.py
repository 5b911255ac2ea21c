"""``streammeta bench throughput``, ``crash``, ``fuzz`` and ``dashboard``: the system around
the learner (speed, crash safety, bad input, the dashboard). Each benchmark is imported when it
runs; the exit code is its verdict where it has one."""

from __future__ import annotations

import argparse
import sys

from streammeta.cli.options import add_out
from streammeta.config import Config
from streammeta.registry import KAFKA_CLIENTS

__all__ = [
    "crash",
    "crash_arguments",
    "dashboard",
    "dashboard_arguments",
    "fuzz",
    "fuzz_arguments",
    "profile",
    "profile_arguments",
    "throughput",
    "throughput_arguments",
]


def throughput_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--learner-only",
        action="store_true",
        help="measure the learner alone (skip Kafka's raw ceiling and the service end to end)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer records per measurement")
    add_out(parser)


def throughput(config: Config, args: argparse.Namespace) -> int:
    from streammeta.bench.throughput import run_throughput

    run_throughput(config, args.out, quick=args.quick, learner_only=args.learner_only)
    print(f"results: {args.out / 'results.json'}")
    return 0


def profile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--records", type=int, default=5_000, help="single-record messages (default 5,000)"
    )
    add_out(parser)


def profile(config: Config, args: argparse.Namespace) -> int:
    from streammeta.bench.profile import profile_service

    result = profile_service(config, args.out, records=args.records)
    print((args.out / "profile.md").read_text())
    rate = result["records_per_s"]
    print(f"{rate:,.0f} records/s under the profiler; {args.out / 'profile.pstats'}")
    return 0


def crash_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kills", type=int, default=20, help="kill points (default 20)")
    parser.add_argument("--records", type=int, default=20_000, help="records (default 20,000)")
    parser.add_argument(
        "--checkpoint-records",
        type=int,
        default=500,
        help="service.checkpoint_records of the killed service (default 500)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill delays (default 0)")
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="instances in one consumer group; above 1 they share their meta-state on a meta "
        "topic synced every 0.5 s, one of them is killed at a time while the others carry on, "
        "and the input topic has two partitions per instance (default 1)",
    )
    add_out(parser, "summary.json")


def crash(config: Config, args: argparse.Namespace) -> int:
    """Exit code 0 when no input offset was lost and (one instance) each record was learned
    exactly once."""
    from streammeta.bench.crash import run_crash_test

    if args.instances > 1:
        from streammeta.bench.group_crash import run_group_crash_test

        group = run_group_crash_test(
            args.out, instances=args.instances, kills=args.kills, records=args.records,
            seed=args.seed,
        )  # fmt: skip
        return 0 if group["lost_offsets"] == 0 else 1

    summary = run_crash_test(
        args.out,
        kills=args.kills,
        records=args.records,
        checkpoint_records=args.checkpoint_records,
        seed=args.seed,
    )
    return 0 if summary["lost_offsets"] == 0 and summary["learned_each_exactly_once"] else 1


def fuzz_arguments(parser: argparse.ArgumentParser) -> None:
    add_out(parser)
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds, a service restart each (default 5)"
    )
    parser.add_argument(
        "--records", type=int, default=2000, help="good records per round (default 2,000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the messages (default 0)")
    parser.add_argument(
        "--client",
        choices=("auto", *KAFKA_CLIENTS.names),
        default="auto",
        help="Kafka client library of the service (default auto)",
    )


def fuzz(config: Config, args: argparse.Namespace) -> int:
    """Exit code 0 when every check of the fuzz run held."""
    from streammeta.bench.fuzz import run_fuzz

    summary = run_fuzz(
        args.out, rounds=args.rounds, records=args.records, seed=args.seed, client=args.client
    )
    return 0 if summary["ok"] else 1


def dashboard_arguments(parser: argparse.ArgumentParser) -> None:
    add_out(parser)
    parser.add_argument(
        "--duration", type=float, default=180.0, help="seconds the demo runs (default 180)"
    )
    parser.add_argument("--stream", default="sinusoid", help="the demo's stream (default sinusoid)")


def dashboard(config: Config, args: argparse.Namespace) -> int:
    """Exit code 1 when Prometheus is missing or the demo run failed."""
    from streammeta.bench.dashboard import run_dashboard

    try:
        png = run_dashboard(args.out, duration=args.duration, extra=["--stream.name", args.stream])
    except (FileNotFoundError, RuntimeError) as exc:  # no prometheus, or a run that failed
        print(f"streammeta: {exc}", file=sys.stderr)
        return 1
    print(f"dashboard: {png}")
    return 0
