"""One frozen, validated configuration: defaults < TOML file < environment < flags.

This is the only module that reads the environment. A field is set from the environment by
``STREAMMETA_<SECTION>__<FIELD>`` (``STREAMMETA_LEARNER__META_LR=0.003``); ``STREAMMETA_CONFIG``
names the TOML file read when no path is given. Flags arrive as dotted keys; ``None`` (an unset
flag) is skipped. Strings are converted to the field's type. Every problem is collected and raised
as one :class:`ConfigError` that names the key, the value, where it came from and the fix.

>>> cfg = load_config(env={}, overrides={"learner.meta_lr": "0.003", "learner.hidden": "64,64"})
>>> cfg.learner.meta_lr, cfg.learner.hidden, cfg.stream.name
(0.003, (64, 64), 'sinusoid')
>>> try:
...     load_config(env={}, overrides={"learner.optimizer": "rms"})
... except ConfigError as exc:
...     print(exc)  # doctest: +ELLIPSIS
learner.optimizer = 'rms' (from flag learner.optimizer): must be one of 'metasgd', 'lopt', ...
"""

import dataclasses
import difflib
import math
import operator
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal, get_args, get_origin

from streammeta.errors import StreamMetaError
from streammeta.registry import (
    ALGORITHMS,
    BASELINES,
    INNER_OPTIMIZERS,
    KAFKA_CLIENTS,
    SEGMENTERS,
    STREAMS,
)

__all__ = [
    "ENV_IGNORED",
    "ENV_PREFIX",
    "SECRETS_FIX",
    "Config",
    "ConfigError",
    "DemoConfig",
    "KafkaConfig",
    "LearnerConfig",
    "LogConfig",
    "MetricsConfig",
    "SegmentConfig",
    "ServiceConfig",
    "StreamConfig",
    "describe_fields",
    "env_name",
    "kafka_secrets",
    "load_config",
    "looks_secret",
    "to_dict",
]

ENV_PREFIX = "STREAMMETA_"
#: ``STREAMMETA_*`` variables that are not fields: ``STREAMMETA_CONFIG`` is the TOML file path;
#: the Kafka passwords are secrets (see :class:`KafkaConfig`).
ENV_IGNORED = frozenset({
    "STREAMMETA_CONFIG",
    "STREAMMETA_KAFKA_SASL_PASSWORD",
    "STREAMMETA_KAFKA_SSL_KEY_PASSWORD",
    "STREAMMETA_DEEP_RIVER",  # the deep-river peer's overlay (streammeta.bench.deep_river)
})  # fmt: skip
#: Stream generators ``stream.name`` may pick; grows as streams are added.

#: Where passwords go instead of a configuration key or a flag (whose value would be printed).
SECRETS_FIX = (
    "passwords are never configuration keys or flags: set STREAMMETA_KAFKA_SASL_PASSWORD or "
    "STREAMMETA_KAFKA_SSL_KEY_PASSWORD (one underscore), or name a file holding it in "
    "kafka.sasl_password_file or kafka.ssl_key_password_file"
)
_SECRET = re.compile(r"pass|secret|token|credential|private|api_?key", re.IGNORECASE)
#: One broker address: a host name, an IPv4 address or a bracketed IPv6 address, and a port.
_BROKER = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})")
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
_Rule = tuple[tuple[str, ...], Callable[[Mapping[str, Any]], bool], str]
_Raw = dict[str, tuple[object, str]]  # field -> (value as given, where it came from)


class ConfigError(StreamMetaError, ValueError):
    """Invalid configuration; ``problems`` holds every problem found, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        head = "" if len(problems) == 1 else f"{len(problems)} configuration problems:\n- "
        super().__init__(head + "\n- ".join(problems))


def _f(
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


def _shown(name: str, value: object) -> str:
    """``value`` as an error message shows it: ``'***'`` under a secret-looking name, also
    inside TOML tables and arrays.

    >>> _shown("kafka", {"sasl_password": "hunter2", "group": "g"})
    "{sasl_password = '***', group = 'g'}"
    """
    if looks_secret(name):
        return "'***'"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_shown(str(k), v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(name, v) for v in value) + "]"
    return repr(value)


def _brokers(text: str) -> bool:
    """Whether ``text`` is empty or ``HOST:PORT[,HOST:PORT...]`` with every port in 1..65535.

    >>> [_brokers(t) for t in ("", "kafka:9092", "a:1, 10.0.0.2:65535", "[::1]:9092")]
    [True, True, True, True]
    >>> [_brokers(t) for t in ("foo:bar", "kafka", "a:0", "a:70000", "a:1,", " ")]
    [False, False, False, False, False, False]
    """
    found = (_BROKER.fullmatch(part.strip()) for part in text.split(","))
    return not text or all(m is not None and 1 <= int(m[1]) <= 65535 for m in found)


class _Section:
    """Shared by the sections: converts every field to its type and checks it on construction."""

    __slots__ = ()
    SECTION: ClassVar[str]
    RULES: ClassVar[tuple[_Rule, ...]] = ()  # cross-field checks: (fields, ok(values), fix)

    def __post_init__(self) -> None:
        cls: Any = type(self)
        values, problems = _check(
            cls, {f.name: (getattr(self, f.name), "argument") for f in fields(cls)}
        )
        if problems:
            raise ConfigError(problems)
        for name, value in values.items():  # normalized, e.g. a list becomes a tuple
            object.__setattr__(self, name, value)


@dataclass(frozen=True, slots=True)
class LearnerConfig(_Section):
    """The meta-learner: model, meta-learning algorithm, learned optimizer, task buffer."""

    SECTION: ClassVar[str] = "learner"
    RULES: ClassVar[tuple[_Rule, ...]] = (
        (
            ("algorithm", "task"),
            lambda v: v["algorithm"] != "protonet" or v["task"] == "classification",
            "algorithm 'protonet' needs task 'classification'",
        ),
        (
            ("task", "n_classes"),
            lambda v: v["n_classes"] >= 2 if v["task"] == "classification" else v["n_classes"] == 0,
            "n_classes must be >= 2 for task 'classification' and 0 for task 'regression'",
        ),
        (
            ("labels", "n_classes"),
            lambda v: not v["labels"] or len(v["labels"]) == v["n_classes"],
            "give one label per class (len(labels) == n_classes), or none",
        ),
        (
            ("feature_names", "n_features"),
            lambda v: not v["feature_names"] or len(v["feature_names"]) == v["n_features"],
            "give one name per feature (len(feature_names) == n_features), or none",
        ),
    )

    task: Literal["regression", "classification"] = _f("regression", "what the model predicts")
    algorithm: str = _f(
        "maml", "meta-learning algorithm for the initialization", choices=ALGORITHMS.names
    )
    optimizer: str = _f(
        "metasgd",
        "inner optimizer: Meta-SGD per-parameter LRs or a learned optimizer net (both on Adam's "
        "direction), fixed Adam, plain SGD",
        choices=INNER_OPTIMIZERS.names,
    )
    hidden: tuple[int, ...] = _f((40, 40), "MLP hidden layer widths", ge=1)
    layer_norm: bool = _f(False, "layer norm after each hidden layer")
    n_features: int = _f(1, "input features per record", ge=1)
    n_classes: int = _f(0, "number of classes (0 for regression)", ge=0)
    labels: tuple[str, ...] = _f(
        (), "class labels records may send as y instead of 0..n_classes-1 (one per class)"
    )
    feature_names: tuple[str, ...] = _f(
        (), "order of named features when x is an object (default: the first record's order)"
    )
    inner_lr: float = _f(
        0.01, "initial inner-loop step size (Adam's, per support_size records)", gt=0
    )
    meta_lr: float = _f(0.001, "learning rate of the meta-update", gt=0)
    meta_batch: int = _f(16, "tasks per meta-update", ge=1)
    inner_steps: int = _f(2, "inner steps unrolled in meta-training", ge=1)
    support_size: int = _f(
        10, "records per inner step in meta-training episodes (match the micro-batch)", ge=1
    )
    meta_every: int = _f(
        10, "labelled records between meta-updates (at most one per micro-batch)", ge=1
    )
    buffer_recent: int = _f(32, "most recent tasks kept in the task buffer", ge=1)
    buffer_reservoir: int = _f(1024, "older tasks kept for replay (reservoir sample)", ge=0)
    task_max_records: int = _f(200, "records kept per task in the buffer", ge=2)
    device: Literal["auto", "cpu", "cuda"] = _f(
        "auto", "torch device; auto picks CUDA when present"
    )
    seed: int = _f(0, "random seed of the learner")
    meta_train: bool = _f(
        True, "meta-train the initialization and the optimizer online (false freezes them)"
    )
    standardize: bool = _f(
        True, "standardize features (and regression targets) online inside the learner"
    )
    scale_horizon: int = _f(
        10_000, "records the standardization's running mean and variance follow", ge=1
    )
    bank_size: int = _f(
        4,
        "fast learners kept and mixed (a long-lived one, fresh ones started at switch candidates "
        "and on a schedule, recalled concepts); 1: one fast learner that a boundary resets",
        ge=1,
    )
    mix: Literal["hedge", "leader"] = _f(
        "hedge",
        "how the bank predicts: its members weighted by recent loss (hedge), or the member with "
        "the lowest recent loss (leader)",
    )
    mix_horizon: int = _f(20, "labelled records the members' recent loss follows", ge=1)
    spawn_every: int = _f(
        100,
        "labelled records between fresh members started on schedule (0 = at switch candidates "
        "only): a missed switch costs at most this many records",
        ge=0,
    )
    confirm_records: int = _f(
        30, "labelled records a new member must lead in a row to open a task", ge=1
    )
    memory_size: int = _f(
        32, "past concepts (fast weights of closed tasks) kept for recall; 0 = no memory", ge=0
    )
    baseline: str = _f(
        "online_adam",
        "shadow baseline run beside the meta-learner (online_adam: Adam, never reset)",
        choices=("none", *BASELINES.names),
    )


@dataclass(frozen=True, slots=True)
class StreamConfig(_Section):
    """The simulated drifting stream used by ``demo``, ``simulate`` and ``bench``."""

    SECTION: ClassVar[str] = "stream"
    name: str = _f("sinusoid", "stream generator", choices=STREAMS.names)
    task_length: int = _f(100, "records between task switches", ge=1)
    batch_size: int = _f(10, "records per micro-batch", ge=1)
    records: int = _f(200_000, "records to generate", ge=1)
    seed: int = _f(0, "random seed of the stream")


@dataclass(frozen=True, slots=True)
class SegmentConfig(_Section):
    """How the stream is cut into tasks. A change of a record's explicit ``task`` field is a
    boundary whatever the detector says. With a bank of fast learners (``learner.bank_size``
    above 1) what the detector finds is a switch candidate: a fresh member starts there, and a
    task opens only where a member started at a candidate takes the lead."""

    SECTION: ClassVar[str] = "segment"
    detector: str = _f(
        "loss_jump",
        "source of switch candidates (of boundaries, with learner.bank_size 1): the loss-jump "
        "test (OSAKA), a river detector on the loss (adwin, page_hinkley, kswin) or on the 0/1 "
        "error of a classifier (ddm, eddm, hddm_a, hddm_w, fhddm), task (explicit field only), "
        "fixed windows, or none",
        choices=SEGMENTERS.names,
    )
    min_task_length: int = _f(
        20, "records a task holds before a detected boundary (or switch candidate)", ge=1
    )
    cooldown: int = _f(0, "records after a boundary before the next can be detected", ge=0)
    window: int = _f(100, "records per task for detector 'fixed'", ge=1)


@dataclass(frozen=True, slots=True)
class DemoConfig(_Section):
    """The ``demo`` command."""

    SECTION: ClassVar[str] = "demo"
    duration: float = _f(30.0, "seconds the demo runs", gt=0)
    records: int = _f(0, "records to process (0 = bounded by duration only)", ge=0)
    out: str = _f("demo-out", "directory the report is written to")
    bad_every: int = _f(
        1000, "plant a bad record every N records, to show the dead-letter path (0 = none)", ge=0
    )


@dataclass(frozen=True, slots=True)
class KafkaConfig(_Section):
    """Kafka topics, client and connection. Secrets are never fields (so never printed): the
    SASL password and the SSL key password come from ``STREAMMETA_KAFKA_SASL_PASSWORD`` /
    ``STREAMMETA_KAFKA_SSL_KEY_PASSWORD`` or from the files named here."""

    SECTION: ClassVar[str] = "kafka"
    RULES: ClassVar[tuple[_Rule, ...]] = (
        (
            ("security_protocol", "sasl_username"),
            lambda v: not v["security_protocol"].startswith("SASL") or bool(v["sasl_username"]),
            "SASL needs kafka.sasl_username (and the password in "
            "STREAMMETA_KAFKA_SASL_PASSWORD or kafka.sasl_password_file)",
        ),
    )

    bootstrap_servers: str = _f(
        "",
        "HOST:PORT[,HOST:PORT...]; empty: demo starts an embedded broker on loopback",
        valid=(
            _brokers,
            "HOST:PORT[,HOST:PORT...] with each PORT from 1 to 65535 (e.g. 'localhost:9092', "
            "'[::1]:9092'), or empty for the demo's embedded broker",
        ),
    )
    client: str = _f(
        "auto",
        "Kafka client library; auto prefers confluent-kafka when it is installed",
        choices=("auto", *KAFKA_CLIENTS.names),
    )
    input_topic: str = _f("streammeta.records", "topic the records are read from")
    output_topic: str = _f("streammeta.predictions", "topic predictions are written to")
    dlq_topic: str = _f("streammeta.dead-letters", "topic bad records are written to")
    group: str = _f("streammeta", "consumer group id")
    client_id: str = _f("streammeta", "client id shown to the brokers")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = _f(
        "PLAINTEXT", "how to reach the brokers"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = _f(
        "PLAIN", "SASL mechanism (SASL protocols only)"
    )
    sasl_username: str = _f("", "SASL user name")
    sasl_password_file: str = _f("", "file holding the SASL password")
    ssl_cafile: str = _f("", "CA certificate file (PEM) to verify the brokers")
    ssl_certfile: str = _f("", "client certificate file (PEM)")
    ssl_keyfile: str = _f("", "client private key file (PEM)")
    ssl_key_password_file: str = _f("", "file holding the client key's password")
    max_message_bytes: int = _f(
        1_000_000, "input messages larger than this go to the dead-letter topic", ge=1
    )
    poll_max_records: int = _f(500, "most messages taken per poll", ge=1)
    session_timeout_ms: int = _f(
        10_000, "consumer group session timeout (a group join waits about half)", ge=1000
    )


@dataclass(frozen=True, slots=True)
class ServiceConfig(_Section):
    """The learner service's checkpoints (``run``, ``demo``)."""

    SECTION: ClassVar[str] = "service"
    checkpoint_dir: str = _f("checkpoints", "directory of the checkpoint file")
    checkpoint_records: int = _f(
        10_000, "input messages between checkpoints (and offset commits)", ge=1
    )
    checkpoint_seconds: float = _f(30.0, "seconds between checkpoints at most", gt=0)
    micro_batch: int = _f(
        32,
        "records per learning step: smaller adapts in fewer records, larger runs faster",
        ge=1,
    )
    max_in_flight: int = _f(
        50_000,
        "messages produced but not yet acknowledged above which input is paused (polling "
        "goes on, so the group keeps the consumer); resumed at half",
        ge=1,
    )
    offset_reset: Literal["earliest", "latest", "fail"] = _f(
        "earliest",
        "where a partition resumes when its committed or checkpointed offset lies beyond the "
        "topic's end (topic re-created or truncated): earliest re-reads it from its first "
        "record, latest skips to its end, fail stops the service (exit code 2)",
    )
    flush_timeout: float = _f(
        30.0,
        "seconds a checkpoint waits for the broker to acknowledge the outputs it covers; "
        "past it the checkpoint is retried with backoff (nothing is lost or rewound)",
        gt=0,
    )
    shutdown_grace: float = _f(
        10.0,
        "seconds SIGTERM or Ctrl-C waits to deliver, checkpoint and commit; past it the service "
        "exits with code 3, keeping the last checkpoint (records since are answered again)",
        gt=0,
    )
    progress_seconds: float = _f(
        30.0, "seconds between progress log lines (records/s, lag, losses; 0 = none)", ge=0
    )


@dataclass(frozen=True, slots=True)
class MetricsConfig(_Section):
    """The HTTP endpoint serving /metrics, /healthz and /readyz."""

    SECTION: ClassVar[str] = "metrics"
    port: int = _f(0, "HTTP port for /metrics, /healthz and /readyz (0 = disabled)", ge=0, le=65535)
    host: str = _f(
        "127.0.0.1",
        "address the metrics endpoint listens on (0.0.0.0: every interface, as in deploy/)",
    )
    stale_seconds: float = _f(
        300.0, "/readyz fails when processed records wait longer than this for a checkpoint", gt=0
    )


@dataclass(frozen=True, slots=True)
class LogConfig(_Section):
    """What the service and the demo log, and how."""

    SECTION: ClassVar[str] = "log"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _f("INFO", "lowest level logged")
    format: Literal["text", "json"] = _f(
        "text", "text: one readable line per event; json: one JSON object per line"
    )


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration: one frozen section per TOML table."""

    learner: LearnerConfig = field(default_factory=LearnerConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    log: LogConfig = field(default_factory=LogConfig)


_SECTIONS: dict[str, Any] = {
    c.SECTION: c
    for c in (
        LearnerConfig,
        StreamConfig,
        SegmentConfig,
        KafkaConfig,
        ServiceConfig,
        DemoConfig,
        MetricsConfig,
        LogConfig,
    )
}


#: Checks across sections, in the sections' format with dotted keys.
_CROSS_RULES: tuple[_Rule, ...] = (
    (
        ("segment.detector", "learner.task"),
        lambda v: (
            v["segment.detector"] not in SEGMENTERS.tagged("error")
            or v["learner.task"] == "classification"
        ),
        "error detectors read a classifier's 0/1 error; set learner.task = 'classification' or "
        "pick a loss detector (adwin, page_hinkley, kswin, loss_jump)",
    ),
)


def _choices(f: dataclasses.Field[Any]) -> tuple[str, ...]:
    return get_args(f.type) if get_origin(f.type) is Literal else f.metadata["choices"]


def _bounds(f: dataclasses.Field[Any]) -> str:
    return " and ".join(
        f"{sym} {f.metadata[k]}" for k, (sym, _) in _BOUNDS.items() if k in f.metadata
    )


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


def _check(cls: Any, raw: _Raw) -> tuple[dict[str, Any], list[str]]:
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
            problems.append(f"{key} = {_shown(key, value)} ({source}): must be {_expect(f)}")
    problems += _broken(cls.RULES, values, given.__getitem__, f"{cls.SECTION}.")
    return values, problems


def _broken(
    rules: tuple[_Rule, ...],
    values: Mapping[str, Any],
    given: Callable[[str], tuple[object, str]],
    prefix: str = "",
) -> list[str]:
    """A problem for every rule ``values`` break, naming each field's value and its source."""
    out = []
    for names, ok, fix in rules:
        if all(n in values for n in names) and not ok(values):
            where = [f"{prefix}{n} = {_shown(n, given(n)[0])} ({given(n)[1]})" for n in names]
            out.append(f"{' with '.join(where)}: {fix}")
    return out


def describe_fields() -> list[tuple[str, str, object, str]]:
    """``(dotted key, type text, default, help)`` of every field, for CLI help and docs.

    >>> describe_fields()[3]
    ('learner.hidden', 'list[int] >= 1', (40, 40), 'MLP hidden layer widths')
    """
    out: list[tuple[str, str, object, str]] = []
    for sec, cls in _SECTIONS.items():
        for f in fields(cls):
            kind = "|".join(_choices(f)) or _KINDS[f.type][0]
            out.append(
                (f"{sec}.{f.name}", f"{kind} {_bounds(f)}".strip(), f.default, f.metadata["help"])
            )
    return out


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
    Raises :class:`ConfigError` listing every problem found.
    """
    env = os.environ if env is None else env
    raw: dict[str, _Raw] = {sec: {} for sec in _SECTIONS}
    problems: list[str] = []

    def put(dotted: str, value: object, source: str, var: str = "") -> None:
        """Store ``value`` under ``dotted``, or report the unknown key and the closest valid one
        (never the value of a secret: it says where passwords go instead)."""
        sec, _, key = dotted.partition(".")
        if dotted in _KEYS:
            raw[sec][key] = (value, source)
            return
        close = [env_name(k) if var else k for k in difflib.get_close_matches(dotted, _KEYS, 1)]
        fix = f"did you mean {close[0]!r}?" if close else f"sections are {', '.join(_SECTIONS)}"
        fix = SECRETS_FIX if looks_secret(dotted) else fix
        shown = _shown(dotted, value)
        problems.append(f"{var or dotted} = {shown} ({source}): unknown key; {fix}")

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
    checked = {sec: _check(cls, raw[sec]) for sec, cls in _SECTIONS.items()}
    problems += [problem for _, errors in checked.values() for problem in errors]
    values = {f"{sec}.{k}": v for sec, (vals, _) in checked.items() for k, v in vals.items()}
    problems += _broken(
        _CROSS_RULES,
        values,
        lambda n: raw[n.split(".")[0]].get(n.split(".")[1], (values[n], "default")),
    )
    if problems:
        raise ConfigError(problems)
    return Config(**{sec: _SECTIONS[sec](**values) for sec, (values, _) in checked.items()})


def kafka_secrets(cfg: KafkaConfig, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Kafka passwords (``sasl_password``, ``ssl_key_password``, each only when set), from
    the environment or else the file the config names. Raises :class:`ConfigError` naming the
    file when it cannot be read; the values themselves never appear in a message.

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


def to_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The config as plain TOML-like tables (tuples become lists), for reports and snapshots."""
    tables = dataclasses.asdict(config)
    return {
        s: {k: list(v) if isinstance(v, tuple) else v for k, v in t.items()}
        for s, t in tables.items()
    }
