"""The ``streammeta`` command line. Every configuration field is also a flag; flags win over
the environment, which wins over the TOML file (see ``streammeta config --help``).

The parser is built from a table of commands (:data:`COMMANDS`: name, help, description, options,
handler); each handler imports what it runs (torch, Kafka clients, the benchmarks) when it runs,
so ``streammeta --help`` and ``streammeta config`` import neither torch nor river.
"""

from streammeta.cli.app import main
from streammeta.cli.commands import COMMANDS, build_parser
from streammeta.cli.options import config_from_args
from streammeta.cli.parser import Command

__all__ = ["COMMANDS", "Command", "build_parser", "config_from_args", "main"]
