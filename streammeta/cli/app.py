"""``main``: parse the arguments, load the configuration the chosen command reads, run its
handler, and turn what stops it into an exit code and one line on stderr."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from streammeta.cli.commands import build_parser
from streammeta.cli.options import config_from_args
from streammeta.cli.parser import chosen
from streammeta.config import ConfigError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """The ``streammeta`` command: parse ``argv`` (default: the process's), run the command,
    return its exit code. A mistake in the arguments exits with code 2 (``SystemExit``)."""
    loop = False
    try:
        args = build_parser().parse_args(argv)
        command = chosen(args)
        loop = command.loop
        config = None
        if command.sections is not None:
            try:
                config = config_from_args(args)
            except ConfigError as exc:
                head = "configuration error: " if len(exc.problems) == 1 else ""
                print(f"streammeta: {head}{exc}", file=sys.stderr)
                return 2
        assert command.run is not None, command.name  # a leaf of the table
        return command.run(config, args)
    except KeyboardInterrupt:
        # a command whose loop turns Ctrl-C into a clean stop was interrupted while starting
        when = " during start-up" if loop else ""
        print(f"streammeta: interrupted{when}", file=sys.stderr)
        return 130
