"""Loading: defaults < TOML file < environment < flags, and the Kafka secrets.

This is the only module that reads the environment. A field is set from the environment by
``STREAMMETA_<SECTION>__<FIELD>`` (``STREAMMETA_LEARNER__META_LR=0.003``); ``STREAMMETA_CONFIG``
names the TOML file read when no path is given. Flags arrive as dotted keys; ``None`` (an unset
flag) is skipped. Every problem, from every source, is collected and raised as one
:class:`~streammeta.config.fields.ConfigError`.

>>> env_name("learner.meta_lr")
'STREAMMETA_LEARNER__META_LR'
>>> load_config(env={"STREAMMETA_LEARNER__META_LR": "0.003"}).learner.meta_lr
0.003
"""

import difflib
import os
import tomllib
from collections.abc import Mapping

from streammeta.config.fields import (
    ConfigError,
    Raw,
    broken_rules,
    check_section,
    looks_secret,
    shown,
)
from streammeta.config.schema import CROSS_RULES, SECTIONS, Config, describe_fields
from streammeta.config.service import KafkaConfig

__all__ = [
    "ENV_IGNORED",
    "ENV_PREFIX",
    "SECRETS_FIX",
    "env_name",
    "kafka_secrets",
    "load_config",
]

ENV_PREFIX = "STREAMMETA_"
#: ``STREAMMETA_*`` variables that are not fields: ``STREAMMETA_CONFIG`` is the TOML file path;
#: the Kafka passwords are secrets (see :class:`~streammeta.config.service.KafkaConfig`).
ENV_IGNORED = frozenset({
    "STREAMMETA_CONFIG",
    "STREAMMETA_KAFKA_SASL_PASSWORD",
    "STREAMMETA_KAFKA_SSL_KEY_PASSWORD",
    "STREAMMETA_DEEP_RIVER",  # the deep-river peer's overlay (streammeta.bench.deep_river)
})  # fmt: skip
#: Where passwords go instead of a configuration key or a flag (whose value would be printed).
SECRETS_FIX = (
    "passwords are never configuration keys or flags: set STREAMMETA_KAFKA_SASL_PASSWORD or "
    "STREAMMETA_KAFKA_SSL_KEY_PASSWORD (one underscore), or name a file holding it in "
    "kafka.sasl_password_file or kafka.ssl_key_password_file"
)
_KEYS = [key for key, *_ in describe_fields()]


def env_name(key: str) -> str:
    """The environment variable that sets a dotted config key."""
    return ENV_PREFIX + key.upper().replace(".", "__")


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Build the config from defaults, a TOML file, ``STREAMMETA_*`` variables and flag overrides.

    ``env=None`` reads ``os.environ``; ``path=None`` falls back to ``$STREAMMETA_CONFIG``.
    Raises :class:`~streammeta.config.fields.ConfigError` listing every problem found.
    """
    env = os.environ if env is None else env
    raw: dict[str, Raw] = {sec: {} for sec in SECTIONS}
    problems: list[str] = []

    def put(dotted: str, value: object, source: str, var: str = "") -> None:
        """Store ``value`` under ``dotted``, or report the unknown key and the closest valid one
        (never the value of a secret: it says where passwords go instead)."""
        sec, _, key = dotted.partition(".")
        if dotted in _KEYS:
            raw[sec][key] = (value, source)
            return
        close = [env_name(k) if var else k for k in difflib.get_close_matches(dotted, _KEYS, 1)]
        fix = f"did you mean {close[0]!r}?" if close else f"sections are {', '.join(SECTIONS)}"
        fix = SECRETS_FIX if looks_secret(dotted) else fix
        problems.append(f"{var or dotted} = {shown(dotted, value)} ({source}): unknown key; {fix}")

    origin = "argument" if path is not None else "from STREAMMETA_CONFIG"
    path = env.get("STREAMMETA_CONFIG") or None if path is None else os.fspath(path)
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else f"not valid TOML: {exc}"
            problems.append(f"config file {path!r} ({origin}): {why}; fix the path or the file")
            data = {}
        for sec, table in data.items():
            for key, value in table.items() if isinstance(table, dict) else [("", table)]:
                put(f"{sec}.{key}".rstrip("."), value, f"from {path}")
    for name, value in sorted(env.items()):
        if name.startswith(ENV_PREFIX) and name not in ENV_IGNORED:
            dotted = name.removeprefix(ENV_PREFIX).lower().replace("__", ".", 1)
            put(dotted, value, f"from {name}", var=name)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            put(dotted, value, f"from flag {dotted}")
    checked = {sec: check_section(cls, raw[sec]) for sec, cls in SECTIONS.items()}
    problems += [problem for _, errors in checked.values() for problem in errors]
    values = {f"{sec}.{k}": v for sec, (vals, _) in checked.items() for k, v in vals.items()}
    problems += broken_rules(
        CROSS_RULES,
        values,
        lambda n: raw[n.split(".")[0]].get(n.split(".")[1], (values[n], "default")),
    )
    if problems:
        raise ConfigError(problems)
    return Config(**{sec: SECTIONS[sec](**values) for sec, (values, _) in checked.items()})


def kafka_secrets(cfg: KafkaConfig, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Kafka passwords (``sasl_password``, ``ssl_key_password``, each only when set), from
    the environment or else the file the config names. Raises
    :class:`~streammeta.config.fields.ConfigError` naming the file when it cannot be read; the
    values themselves never appear in a message.

    >>> kafka_secrets(KafkaConfig(), env={"STREAMMETA_KAFKA_SASL_PASSWORD": "s3cret"})
    {'sasl_password': 's3cret'}
    """
    env = os.environ if env is None else env
    out, problems = {}, []
    for name, path in (
        ("sasl_password", cfg.sasl_password_file),
        ("ssl_key_password", cfg.ssl_key_password_file),
    ):
        var = f"{ENV_PREFIX}KAFKA_{name.upper()}"
        if env.get(var):
            out[name] = env[var]
        elif path:
            try:
                with open(path, encoding="utf-8") as fh:
                    out[name] = fh.read().strip()
            except OSError as exc:
                problems.append(
                    f"kafka.{name}_file = {path!r}: {exc.strerror}; fix the path or set {var}"
                )
    if problems:
        raise ConfigError(problems)
    return out
