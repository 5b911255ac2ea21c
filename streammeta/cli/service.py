"""``streammeta run``, ``demo`` and ``broker``: the learner service, the demo around it, and the
embedded broker. The service, the demo and the broker (torch, Kafka clients) are imported when a
command runs, not when the command line is built."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from streammeta.cli.options import has_brokers
from streammeta.config import Config
from streammeta.errors import StreamMetaError
from streammeta.logs import setup_logging

__all__ = ["EXIT_CODES", "broker", "broker_arguments", "demo", "refused", "run", "run_arguments"]

EXIT_CODES = """exit codes:
  0    stopped cleanly: everything processed is checkpointed and its offsets committed
  1    an unexpected error (the log or the traceback says what)
  2    a user mistake: the configuration, a flag, a checkpoint refused, or service.offset_reset = \
fail tripped
  3    stopped by SIGTERM or Ctrl-C after service.shutdown_grace seconds with the broker \
unreachable: the last checkpoint is kept, and the records since it are answered again after a \
restart
  130  interrupted during start-up"""


def refused(exc: Exception) -> int:
    """Say on one line why a command stopped on a :class:`StreamMetaError`; its exit code
    (the error's ``exit_code``, else 2: a user mistake)."""
    print(f"streammeta: {exc}", file=sys.stderr)
    code: int = getattr(exc, "exit_code", 2)
    return code


def run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-records",
        type=int,
        default=0,
        help="exit cleanly after this many input records (good and bad; default 0: never)",
    )
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="exit cleanly after this many seconds without a message (default 0: never)",
    )


def run(config: Config, args: argparse.Namespace) -> int:
    """The learner service until it stops; its exit code (see ``streammeta run --help``)."""
    if not has_brokers(config, "run"):
        return 2
    setup_logging(config.log)
    log = logging.getLogger("streammeta")

    import torch

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
        return refused(exc)
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


def demo(config: Config, args: argparse.Namespace) -> int:
    """The demo until it has run its course; its report is written to ``demo.out``."""
    from streammeta.bench.demo import run_demo

    setup_logging(config.log)
    try:
        run_demo(config)
    except StreamMetaError as exc:
        return refused(exc)
    return 0


def broker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port to listen on (default 0: a free port)"
    )
    parser.add_argument(
        "--log",
        type=Path,
        help="file the broker log is appended to (default: streammeta-broker-PORT.log in the "
        "temporary directory)",
    )


def broker(config: None, args: argparse.Namespace) -> int:
    """Run the embedded broker until SIGINT or SIGTERM."""
    import signal
    import threading

    from streammeta.io.broker import BrokerError, EmbeddedBroker

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server = EmbeddedBroker(args.port, log_path=args.log).start()
    except (BrokerError, ValueError) as exc:
        print(f"streammeta: {exc}", file=sys.stderr)
        return 1
    print(f"broker listening on {server.bootstrap}", flush=True)
    print(f"log: {server.log_path}; Ctrl-C stops it", flush=True)
    try:
        while not stop.wait(0.5):
            if not server.running:
                print(f"streammeta: the broker exited; see {server.log_path}", file=sys.stderr)
                return 1
    finally:
        server.stop()
    print("broker stopped", flush=True)
    return 0
