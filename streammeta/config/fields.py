"""How a configuration field is declared, converted and checked, and how a problem is said.

A section is a frozen dataclass deriving from :class:`Section` whose fields are made by
:func:`setting`: a default, one line of help, and its checks (``choices``, bounds, a ``valid``
test). :func:`check_section` converts raw values (strings from the environment or flags, TOML
values, arguments) to each field's type and returns every problem, one line each naming the key,
the value (``'***'`` when it may be a secret), where it came from and what a valid value is;
:class:`ConfigError` carries them all.

>>> from dataclasses import dataclass
>>> from typing import ClassVar
>>> @dataclass(frozen=True)
... class Toy(Section):
...     SECTION: ClassVar[str] = "toy"
...     size: int = setting(3, "how many", ge=1)
>>> Toy(size="4").size
4
>>> try:
...     Toy(size=0)
... except ConfigError as exc:
...     print(exc)
toy.size = 0 (argument): must be an integer >= 1
"""

import dataclasses
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import field, fields
from typing import Any, ClassVar, Literal, get_args, get_origin

from streammeta.errors import StreamMetaError

__all__ = [
    "ConfigError",
    "Raw",
    "Rule",
    "Section",
    "broken_rules",
    "check_section",
    "describe",
    "looks_secret",
    "setting",
    "shown",
]

_SECRET = re.compile(r"pass|secret|token|credential|private|api_?key", re.IGNORECASE)
_BOOLS = dict.fromkeys(("true", "1", "yes", "on"), True)
_BOOLS.update(dict.fromkeys(("false", "0", "no", "off"), False))
_BOUNDS = {"gt": (">", operator.gt), "ge": (">=", operator.ge), "le": ("<=", operator.le)}
_INTS = tuple[int, ...]
_STRS = tuple[str, ...]
_ITEMS: dict[Any, type] = {_INTS: int, _STRS: str}  # list types -> their item type
_KINDS: dict[Any, tuple[str, str]] = {  # type -> (type text, what a valid value is)
    bool: ("bool", "true or false (or 1/0, yes/no)"),
    int: ("int", "an integer"),
    float: ("float", "a number"),
    str: ("str", "a string"),
    _INTS: ("list[int]", "a list of integers"),
    _STRS: ("list[str]", "a list of strings"),
}
#: A check across fields: (the fields, ok(values by field), the fix).
Rule = tuple[tuple[str, ...], Callable[[Mapping[str, Any]], bool], str]
#: Raw values of a section: field -> (value as given, where it came from).
Raw = dict[str, tuple[object, str]]


class ConfigError(StreamMetaError, ValueError):
    """Invalid configuration; ``problems`` holds every problem found, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        head = "" if len(problems) == 1 else f"{len(problems)} configuration problems:\n- "
        super().__init__(head + "\n- ".join(problems))


def setting(
    default: object,
    help: str,
    *,
    choices: tuple[str, ...] = (),
    valid: tuple[Callable[[Any], bool], str] | None = None,
    **bounds: float,
) -> Any:
    """A field with its help text and checks: ``choices``, bounds ``gt``, ``ge``, ``le``, and
    ``valid``: a test of the converted value with the text saying what passes it."""
    return field(
        default=default, metadata={"help": help, "choices": choices, "valid": valid, **bounds}
    )


def looks_secret(name: str) -> bool:
    """Whether a key, variable or flag called ``name`` may hold a secret (a password, a token):
    its value is never shown. A ``*_file`` key names the file holding one, and is shown.

    >>> names = ("kafka.sasl_password", "STREAMMETA_KAFKA__SSL_KEY_PASSWORD", "api_token")
    >>> [looks_secret(n) for n in names]
    [True, True, True]
    >>> [looks_secret(n) for n in ("kafka.sasl_password_file", "kafka.ssl_keyfile", "seed")]
    [False, False, False]
    """
    return bool(_SECRET.search(name)) and not name.lower().endswith("_file")


def shown(name: str, value: object) -> str:
    """``value`` as an error message shows it: ``'***'`` under a secret-looking name, also
    inside TOML tables and arrays.

    >>> shown("kafka", {"sasl_password": "hunter2", "group": "g"})
    "{sasl_password = '***', group = 'g'}"
    """
    if looks_secret(name):
        return "'***'"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {shown(str(k), v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(shown(name, v) for v in value) + "]"
    return repr(value)


class Section:
    """Shared by the sections: converts every field to its type and checks it on construction."""

    __slots__ = ()
    SECTION: ClassVar[str]
    RULES: ClassVar[tuple[Rule, ...]] = ()  # cross-field checks

    def __post_init__(self) -> None:
        cls: Any = type(self)
        values, problems = check_section(
            cls, {f.name: (getattr(self, f.name), "argument") for f in fields(cls)}
        )
        if problems:
            raise ConfigError(problems)
        for name, value in values.items():  # normalized, e.g. a list becomes a tuple
            object.__setattr__(self, name, value)


def _choices(f: dataclasses.Field[Any]) -> tuple[str, ...]:
    return get_args(f.type) if get_origin(f.type) is Literal else f.metadata["choices"]


def _bounds(f: dataclasses.Field[Any]) -> str:
    return " and ".join(
        f"{sym} {f.metadata[k]}" for k, (sym, _) in _BOUNDS.items() if k in f.metadata
    )


def describe(f: dataclasses.Field[Any]) -> str:
    """The type text of ``f`` for help: its choices, or its type and bounds."""
    kind = "|".join(_choices(f)) or _KINDS[f.type][0]
    return f"{kind} {_bounds(f)}".strip()


def _expect(f: dataclasses.Field[Any]) -> str:
    """What a valid value of ``f`` looks like, for error messages."""
    if choices := _choices(f):
        return "one of " + ", ".join(map(repr, choices))
    if f.metadata["valid"]:
        return str(f.metadata["valid"][1])
    return f"{_KINDS[f.type][1]} {_bounds(f)}".strip()


def _scalar(kind: Any, value: object) -> Any:
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        return _BOOLS[text.lower()] if kind is bool else kind(text)
    if kind is float and type(value) is int:
        return float(value)
    if type(value) is not kind:
        raise TypeError(value)
    return value


def _convert(f: dataclasses.Field[Any], value: object) -> Any:
    """``value`` converted to the type of ``f``; raises if it cannot be or fails a check."""
    if f.type in _ITEMS:
        items = (value.split(",") if value.strip() else []) if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise TypeError(value)
        out: Any = tuple(_scalar(_ITEMS[f.type], item) for item in items)
    else:
        out = _scalar(str if get_origin(f.type) is Literal else f.type, value)
    choices = _choices(f)
    for x in out if isinstance(out, tuple) else (out,):
        if any(k in f.metadata and not ok(x, f.metadata[k]) for k, (_, ok) in _BOUNDS.items()):
            raise ValueError(value)
        if (choices and x not in choices) or (type(x) is float and not math.isfinite(x)):
            raise ValueError(value)
    if f.metadata["valid"] and not f.metadata["valid"][0](out):
        raise ValueError(value)
    return out


def check_section(cls: Any, raw: Raw) -> tuple[dict[str, Any], list[str]]:
    """One section's values converted from ``raw`` (defaults filled in), and every problem."""
    given = {f.name: raw.get(f.name, (f.default, "default")) for f in fields(cls)}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f in fields(cls):
        value, source = given[f.name]
        try:
            values[f.name] = _convert(f, value)
        except (TypeError, ValueError, KeyError):
            key = f"{cls.SECTION}.{f.name}"
            problems.append(f"{key} = {shown(key, value)} ({source}): must be {_expect(f)}")
    problems += broken_rules(cls.RULES, values, given.__getitem__, f"{cls.SECTION}.")
    return values, problems


def broken_rules(
    rules: tuple[Rule, ...],
    values: Mapping[str, Any],
    given: Callable[[str], tuple[object, str]],
    prefix: str = "",
) -> list[str]:
    """A problem for every rule ``values`` break, naming each field's value and its source."""
    out = []
    for names, ok, fix in rules:
        if all(n in values for n in names) and not ok(values):
            where = [f"{prefix}{n} = {shown(n, given(n)[0])} ({given(n)[1]})" for n in names]
            out.append(f"{' with '.join(where)}: {fix}")
    return out
