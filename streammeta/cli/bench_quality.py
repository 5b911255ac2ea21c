"""``streammeta bench adaptation`` and ``bench batch-sizes``: how well the learners adapt, and
whether the micro-batch size changes it. Their options list the benchmark's learners and sizes,
so :mod:`streammeta.bench` (torch, river) is imported when one of them is parsed or run."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from streammeta.cli.options import add_out
from streammeta.config import Config
from streammeta.registry import STREAMS

__all__ = ["adaptation", "adaptation_arguments", "batch_sizes", "batch_sizes_arguments"]


def _names(text: str) -> tuple[str, ...]:
    """The names in a comma-separated list, stripped, empty ones dropped."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _common(parser: argparse.ArgumentParser) -> None:
    add_out(parser)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="stream seed (default 0)")


def adaptation_arguments(parser: argparse.ArgumentParser) -> None:
    from streammeta.bench.adaptation import DEFAULT_LEARNERS, VARIANTS

    names = ", ".join(STREAMS.names)
    parser.add_argument(
        "--stream",
        default=",".join(STREAMS.names),
        help=f"stream name(s), comma-separated, from: {names} (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run (12,000 records a stream)"
    )
    parser.add_argument(
        "--records",
        type=int,
        help="records a stream (default 60,000; 12,000 with --quick), in whole tasks of the "
        "stream's length, at least 6",
    )
    _common(parser)
    parser.add_argument(
        "--learners",
        help=f"comma-separated learners, or 'all', from: {', '.join(VARIANTS)} "
        f"(default: {', '.join(DEFAULT_LEARNERS)})",
    )


def adaptation(config: Config, args: argparse.Namespace) -> int:
    """Every learner on the same seeded streams; exit code 2 for a plan that cannot run."""
    from streammeta.bench.adaptation import VARIANTS, AdaptationPlan, run_adaptation

    plan_kw: dict[str, Any] = {
        "streams": _names(args.stream),
        "workers": args.workers,
        "seed": args.seed,
        "records": args.records,
    }
    if args.learners == "all":
        plan_kw["learners"] = tuple(VARIANTS)
    elif args.learners:
        plan_kw["learners"] = _names(args.learners)
    try:
        plan = AdaptationPlan(quick=args.quick, **plan_kw)
    except ValueError as exc:
        print(f"streammeta: {exc}", file=sys.stderr)
        return 2
    run_adaptation(plan, config.learner, args.out, segment=config.segment)
    print(f"results: {args.out / 'results.json'}")
    return 0


def batch_sizes_arguments(parser: argparse.ArgumentParser) -> None:
    from streammeta.bench.batch_sizes import DEFAULT_STREAMS, SIZES

    parser.add_argument(
        "--stream",
        default=",".join(DEFAULT_STREAMS),
        help=f"stream name(s), comma-separated, from: {', '.join(STREAMS.names)} "
        f"(default: {','.join(DEFAULT_STREAMS)})",
    )
    sizes = ",".join(map(str, SIZES))
    parser.add_argument(
        "--sizes",
        default=sizes,
        help=f"micro-batch sizes, comma-separated (default: {sizes})",
    )
    parser.add_argument(
        "--records", type=int, default=10_000, help="records a stream (default 10,000)"
    )
    _common(parser)


def batch_sizes(config: Config, args: argparse.Namespace) -> int:
    """The default learner and online_adam at every micro-batch size; exit code 2 for a plan
    that cannot run."""
    from streammeta.bench.batch_sizes import check_plan, run_batch_sizes

    streams, words = _names(args.stream), _names(args.sizes)
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
    return 0
