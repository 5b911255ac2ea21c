"""One frozen, validated configuration: defaults < TOML file < environment < flags.

The schema (one frozen section per TOML table: :mod:`~streammeta.config.learning`,
:mod:`~streammeta.config.service`, gathered in :mod:`~streammeta.config.schema`) is apart from
the engine: how a field is declared, converted and checked (:mod:`~streammeta.config.fields`)
and how the sources are read and merged (:mod:`~streammeta.config.load`, the only module that
reads the environment). A field is set from the environment by
``STREAMMETA_<SECTION>__<FIELD>`` (``STREAMMETA_LEARNER__META_LR=0.003``); ``STREAMMETA_CONFIG``
names the TOML file read when no path is given. Flags arrive as dotted keys; ``None`` (an unset
flag) is skipped. Strings are converted to the field's type. Every problem is collected and raised
as one :class:`ConfigError` that names the key, the value, where it came from and the fix.

This package imports nothing of streammeta but :mod:`streammeta.errors` and
:mod:`streammeta.registry`, so reading the configuration never imports torch or river.

>>> cfg = load_config(env={}, overrides={"learner.meta_lr": "0.003", "learner.hidden": "64,64"})
>>> cfg.learner.meta_lr, cfg.learner.hidden, cfg.stream.name
(0.003, (64, 64), 'sinusoid')
>>> try:
...     load_config(env={}, overrides={"learner.optimizer": "rms"})
... except ConfigError as exc:
...     print(exc)  # doctest: +ELLIPSIS
learner.optimizer = 'rms' (from flag learner.optimizer): must be one of 'metasgd', 'lopt', ...
"""

from streammeta.config.fields import ConfigError, looks_secret
from streammeta.config.learning import LearnerConfig, SegmentConfig, StreamConfig
from streammeta.config.load import (
    ENV_IGNORED,
    ENV_PREFIX,
    SECRETS_FIX,
    env_name,
    kafka_secrets,
    load_config,
)
from streammeta.config.schema import Config, describe_fields, to_dict
from streammeta.config.service import (
    DemoConfig,
    KafkaConfig,
    LogConfig,
    MetaConfig,
    MetricsConfig,
    ServiceConfig,
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
    "MetaConfig",
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
