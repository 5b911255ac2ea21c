"""The command table: every command's ``--help`` works and explains every option it lists,
including each config field of the sections it reads; building the parser and reading the
configuration import neither torch nor river."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from streammeta.cli import COMMANDS, Command, main
from streammeta.config import describe_fields, env_name


def _paths(commands: tuple[Command, ...], above: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for command in commands:
        yield (*above, command.name)
        yield from _paths(command.subcommands, (*above, command.name))


def _command(path: tuple[str, ...]) -> Command:
    commands, found = COMMANDS, None
    for name in path:
        found = next(c for c in commands if c.name == name)
        commands = found.subcommands
    assert found is not None
    return found


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def _entries(out: str) -> dict[str, str]:
    """Each option of a help text and what its help says (all flags of one entry share it)."""
    entries: dict[str, str] = {}
    flags: list[str] = []
    for line in out.splitlines():
        if re.match(r"  -", line):
            invocation, _, text = line.strip().partition("  ")
            flags = re.findall(r"(?:^|, )(-{1,2}[\w.-]+)", invocation)
            entries.update(dict.fromkeys(flags, text.strip()))
        elif flags and re.match(r" {3,}\S", line):
            entries.update({f: f"{entries[f]} {line.strip()}".strip() for f in flags})
        else:
            flags = []
    return entries


def test_the_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    out = _help([], capsys)
    for command in COMMANDS:
        assert re.search(rf"^    {command.name} +{re.escape(command.help[:30])}", out, re.M)


@pytest.mark.parametrize("path", list(_paths(COMMANDS)), ids=" ".join)
def test_every_command_help_explains_every_option(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    command = _command(path)
    out = _help(list(path), capsys)
    assert out.startswith(f"usage: streammeta {' '.join(path)} ")
    usage = out[: out.index("\n\n")]
    listed = set(re.findall(r"[\s\[](-{1,2}[A-Za-z][\w.-]*)", usage)) | {"--help"}
    entries = _entries(out)
    assert set(entries) == listed
    assert all(entries.values()), [flag for flag, text in entries.items() if not text]
    for sub in command.subcommands:
        assert re.search(rf"^    {sub.name}\b", out, re.M), sub.name
    for flag, key, _, _ in command.aliases:
        assert flag in entries and f"[env: {env_name(key)}]" in entries[flag]
    if command.sections is not None and not command.subcommands:
        assert "--config" in entries
        for key, *_ in describe_fields():
            if key.split(".")[0] in command.sections:
                assert f"[env: {env_name(key)}]" in entries[f"--{key}"], key


@pytest.mark.parametrize("argv", [["--help"], ["config"], ["run", "--help"]])
def test_the_command_line_without_a_run_imports_no_heavy_library(argv: list[str]) -> None:
    code = (
        "import sys\nfrom streammeta.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted({'torch', 'river', 'numpy', 'scipy', 'sklearn'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
