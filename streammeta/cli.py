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
    "demo": ("learner", "stream", "segment", "demo"),
    "adaptation": ("learner", "segment"),
    "throughput": ("learner",),
    "config": ("learner", "stream", "segment", "demo", "metrics"),
}


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
        help="measure the learner alone (the only part in this release)",
    )
    th.add_argument("--quick", action="store_true", help="fewer records per measurement")
    th.add_argument("--out", type=Path, required=True, help="directory for the results")
    _add_config_flags(th, _SECTIONS["throughput"])

    cfg = sub.add_parser(
        "config",
        help="print the effective configuration (file, env and flags applied) as TOML",
        description="Validates and prints the configuration. Precedence: defaults < --config "
        "FILE (or STREAMMETA_CONFIG) < STREAMMETA_<SECTION>__<FIELD> env vars < flags.",
    )
    _add_config_flags(cfg, _SECTIONS["config"])
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = _load(args)
    except ConfigError as exc:
        print(f"streammeta: configuration error\n{exc}", file=sys.stderr)
        return 2
    if args.command == "config":
        print(_toml(config))
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
    else:
        from streammeta.bench.throughput import run_throughput

        run_throughput(config.learner, args.out, quick=args.quick)
        print(f"results: {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
