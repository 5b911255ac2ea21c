"""Flags of configuration fields: every field of a command's sections as ``--section.field``,
short aliases of some (``--bootstrap-servers``), each documented with its type, default and
environment variable; and the configuration the parsed flags give.

>>> from streammeta.cli.parser import Command, build
>>> table = (Command("show", "show it", aliases=(BROKERS,), sections=("log",)),)
>>> args = build("x", "", table, add_options).parse_args(
...     ["show", "--bootstrap-servers", "k:9092", "--log.level", "DEBUG"]
... )
>>> config = config_from_args(args)
>>> config.kafka.bootstrap_servers, config.log.level
('k:9092', 'DEBUG')
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from streammeta.cli.parser import Alias, Command
from streammeta.config import Config, describe_fields, env_name, load_config

__all__ = [
    "BROKERS",
    "LOGGING",
    "METRICS_PORT",
    "add_options",
    "add_out",
    "config_from_args",
    "has_brokers",
]

_FLAG = "cfg:"  # the namespace attribute of a config key's flag: "cfg:learner.meta_lr"
_FIELDS = {key: (kind, default, text) for key, kind, default, text in describe_fields()}
BROKERS: Alias = (
    "--bootstrap-servers",
    "kafka.bootstrap_servers",
    "HOST:PORT",
    "brokers to connect to: HOST:PORT[,HOST:PORT...]",
)
METRICS_PORT: Alias = (
    "--metrics-port",
    "metrics.port",
    "PORT",
    "serve /metrics, /healthz, /readyz on PORT",
)
LOGGING: tuple[Alias, ...] = (
    ("--log-level", "log.level", "", ""),
    ("--log-format", "log.format", "", ""),
)


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
                dest=_FLAG + key,
                metavar=_metavar(kind),
                help=f"{help_text} ({kind}; default {default!r}) [env: {env_name(key)}]",
            )


def _add_aliases(
    parser: argparse.ArgumentParser, aliases: Sequence[Alias], sections: Sequence[str]
) -> None:
    """Short options, each documented with its config key (the key's flag when the command
    takes it too)."""
    for flag, key, metavar, text in aliases:
        kind, default, help_text = _FIELDS[key]
        same = f"--{key}" if key.split(".")[0] in sections else key
        parser.add_argument(
            flag,
            dest=_FLAG + key,
            metavar=metavar or _metavar(kind),
            help=f"{text or help_text} (same as {same}; default {default!r}) "
            f"[env: {env_name(key)}]",
        )


def add_options(parser: argparse.ArgumentParser, command: Command) -> None:
    """``command``'s options in the order its help lists them: its aliases, its own arguments,
    then ``--config`` and a group of flags per config section (none when it reads no
    configuration)."""
    _add_aliases(parser, command.aliases, command.sections or ())
    command.arguments(parser)
    if command.sections is not None:
        _add_config_flags(parser, command.sections)


def add_out(parser: argparse.ArgumentParser, what: str = "the results") -> None:
    """The required ``--out`` directory."""
    parser.add_argument("--out", type=Path, required=True, help=f"directory for {what}")


def config_from_args(args: argparse.Namespace) -> Config:
    """The configuration: defaults < ``--config`` file (or ``STREAMMETA_CONFIG``) < environment
    < the flags given in ``args``. Raises :class:`~streammeta.config.ConfigError`."""
    overrides = {k.removeprefix(_FLAG): v for k, v in vars(args).items() if k.startswith(_FLAG)}
    return load_config(getattr(args, "config", None), overrides=overrides)


def has_brokers(config: Config, command: str) -> bool:
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
