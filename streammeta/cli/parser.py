"""The command line's parser, built from a table of :class:`Command`.

Each command names its help, description, options and handler. A command's options are added
the first time it is parsed or its help is shown, so building the whole tree (``streammeta
--help``, ``streammeta config``) imports nothing a command's options need (the benchmarks list
their learners from :mod:`streammeta.bench`, which imports torch).

>>> def hello(config, args):
...     return 0
>>> table = (Command("hello", "say hello", arguments=lambda p: p.add_argument("--name")),)
>>> args = build("demo", "A demo.", table).parse_args(["hello", "--name", "x"])
>>> chosen(args).name, args.name
('hello', 'x')
"""

from __future__ import annotations

import argparse
import difflib
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from streammeta.config import SECRETS_FIX, looks_secret

__all__ = ["Command", "Parser", "build", "chosen"]

#: A command's handler: ``(config, args) -> exit code``; ``config`` is ``None`` for a command
#: that reads no configuration.
Handler = Callable[[Any, argparse.Namespace], int]
#: A short option: (flag, config key, metavar or "" for the field's, help or "" for the field's).
Alias = tuple[str, str, str, str]
_CHOSEN = "cli:command"  # the namespace attribute holding the chosen Command
#: How a command's options are added: ``(its parser, the command)``.
_Options = Callable[[argparse.ArgumentParser, "Command"], object]


def _no_options(parser: argparse.ArgumentParser) -> None:
    """A command without options of its own."""


@dataclass(frozen=True)
class Command:
    """One command: its ``name``, one line of ``help``, a ``description`` (and ``epilog``) for
    its ``--help``; ``aliases``: short options of config keys; ``arguments`` adds its own
    options; ``sections``: the config sections whose fields it takes as flags (``None``: it
    reads no configuration, not even ``--config``); ``run``, its handler. A command with
    ``subcommands`` is a group (``metavar`` names the choice); ``loop`` marks a command whose
    loop turns Ctrl-C into a clean stop."""

    name: str
    help: str
    description: str | None = None
    epilog: str | None = None
    aliases: tuple[Alias, ...] = ()
    arguments: Callable[[argparse.ArgumentParser], object] = _no_options
    sections: tuple[str, ...] | None = ()
    run: Handler | None = None
    subcommands: tuple[Command, ...] = ()
    metavar: str = "COMMAND"
    loop: bool = False


class _Formatter(argparse.HelpFormatter):
    """Wraps each line of a description or epilog on its own, an indented line with a
    hanging indent under its text (the exit codes table)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        filled = []
        for line in text.splitlines():
            pad = line[: len(line) - len(line.lstrip())]
            item = re.match(r"\s+\S+\s+", line) if pad else None  # "  CODE  what it means"
            hang = indent + (" " * len(item.group()) if item else "")
            filled.append(
                textwrap.fill(
                    line.strip(), width, initial_indent=indent + pad, subsequent_indent=hang
                )
            )
        return "\n".join(filled)


class Parser(argparse.ArgumentParser):
    """argparse without prefix matching (a mistyped ``--kafka.sasl_password`` is never taken
    for ``--kafka.sasl_password_file``), with one-line errors, and an unknown option named with
    the closest known one; values are never echoed (they may be secrets). ``options`` adds the
    parser's options when it is first used (parsed, or its help or usage shown)."""

    def __init__(
        self,
        *args: Any,
        options: Callable[[argparse.ArgumentParser], object] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)
        self._options = options

    def _complete(self) -> None:
        add, self._options = self._options, None
        if add is not None:
            add(self)

    def format_usage(self) -> str:
        self._complete()
        return super().format_usage()

    def format_help(self) -> str:
        self._complete()
        return super().format_help()

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._complete()
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.exit(2, f"{self.prog}: {self._unknown(extras)}\n")
        return parsed, extras

    def _unknown(self, extras: list[str]) -> str:
        """What is wrong with the first argument nothing took, and the fix."""
        flag = next((a.split("=", 1)[0] for a in extras if a.startswith("-")), None)
        if flag is None:
            return f"unexpected argument {extras[0]!r}; see `{self.prog} --help`"
        if looks_secret(flag):
            return f"unknown option {flag} (its value is not shown); {SECRETS_FIX}"
        known = [option for action in self._actions for option in action.option_strings]
        close = difflib.get_close_matches(flag, known, 1)
        fix = f"did you mean {close[0]}?" if close else f"see `{self.prog} --help`"
        return f"unknown option {flag}; {fix}"

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}; see `{self.prog} --help`\n")


def _deferred(options: _Options, command: Command) -> Callable[[argparse.ArgumentParser], object]:
    return lambda parser: options(parser, command)


def _add_commands(
    parser: argparse.ArgumentParser,
    commands: Sequence[Command],
    dest: str,
    metavar: str,
    options: _Options,
) -> None:
    sub = parser.add_subparsers(dest=dest, required=True, metavar=metavar)
    for command in commands:
        child = sub.add_parser(
            command.name,
            help=command.help,
            description=command.description,
            epilog=command.epilog,
            options=None if command.subcommands else _deferred(options, command),
        )
        child.set_defaults(**{_CHOSEN: command})
        if command.subcommands:
            _add_commands(child, command.subcommands, command.name, command.metavar, options)


def build(
    prog: str,
    description: str,
    commands: Sequence[Command],
    options: _Options | None = None,
) -> Parser:
    """The parser of ``prog`` with one subcommand per entry of ``commands`` (its name in
    ``args.command``; a group's choice under the group's name, e.g. ``args.bench``).
    ``options(parser, command)`` adds a command's options on first use; by default its
    ``arguments``."""
    parser = Parser(prog=prog, description=description)
    add = options or (lambda parser, command: command.arguments(parser))
    _add_commands(parser, commands, "command", "COMMAND", add)
    return parser


def chosen(args: argparse.Namespace) -> Command:
    """The command ``args`` were parsed for (the innermost one of a group)."""
    command: Command = getattr(args, _CHOSEN)
    return command
