"""Tests for streammeta.config: precedence, conversions, errors and round trips."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from streammeta.config import (
    ENV_IGNORED,
    Config,
    ConfigError,
    LearnerConfig,
    describe_fields,
    load_config,
    to_dict,
)
from streammeta.errors import StreamMetaError
from streammeta.registry import (
    ALGORITHMS,
    BASELINES,
    INNER_OPTIMIZERS,
    KAFKA_CLIENTS,
    SEGMENTERS,
    STREAMS,
    Registry,
)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def _write_toml(path: Path, tables: dict[str, dict[str, object]]) -> Path:
    lines = []
    for section, table in tables.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _problems(**kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(**kwargs)  # type: ignore[arg-type]
    return info.value.problems


# --- defaults and precedence ---------------------------------------------------------------


def test_defaults() -> None:
    cfg = load_config(env={})
    assert cfg == Config()
    assert cfg.learner.algorithm == "maml"
    assert cfg.learner.optimizer == "metasgd"
    assert cfg.learner.hidden == (40, 40)
    assert cfg.learner.meta_lr == 0.001
    assert cfg.learner.baseline == "online_adam"
    assert cfg.stream.name == "sinusoid" and cfg.stream.records == 200_000
    assert cfg.demo.duration == 30.0 and cfg.demo.out == "demo-out"
    assert cfg.metrics.port == 0 and cfg.metrics.host == "127.0.0.1"  # loopback unless told
    assert (cfg.log.level, cfg.log.format) == ("INFO", "text")


def test_toml_file(tmp_path: Path) -> None:
    path = _write_toml(
        tmp_path / "c.toml",
        {
            "learner": {"meta_lr": 0.01, "hidden": [64, 32], "layer_norm": True, "inner_lr": 1},
            "stream": {"task_length": 50},
        },
    )
    cfg = load_config(path, env={})
    assert cfg.learner.meta_lr == 0.01
    assert cfg.learner.hidden == (64, 32)
    assert cfg.learner.layer_norm is True
    assert cfg.learner.inner_lr == 1.0 and isinstance(cfg.learner.inner_lr, float)
    assert cfg.stream.task_length == 50
    assert cfg.stream.batch_size == 10  # untouched fields keep their defaults
    assert load_config(str(path), env={}) == cfg


def test_env_beats_file_and_flags_beat_env(tmp_path: Path) -> None:
    path = _write_toml(tmp_path / "c.toml", {"learner": {"meta_lr": 0.01, "meta_batch": 4}})
    env = {"STREAMMETA_LEARNER__META_LR": "0.02", "STREAMMETA_STREAM__SEED": "7"}
    cfg = load_config(path, env=env)
    assert (cfg.learner.meta_lr, cfg.learner.meta_batch, cfg.stream.seed) == (0.02, 4, 7)
    cfg = load_config(path, env=env, overrides={"learner.meta_lr": 0.003, "stream.seed": None})
    assert cfg.learner.meta_lr == 0.003
    assert cfg.stream.seed == 7  # a None override is an unset flag: ignored


def test_env_none_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMMETA_METRICS__PORT", "9100")
    assert load_config().metrics.port == 9100


def test_unrelated_env_is_ignored() -> None:
    env = {"PATH": "/bin", "MY_STREAMMETA_X": "1", "streammeta_learner__seed": "3"}
    assert load_config(env=env) == Config()
    assert "STREAMMETA_CONFIG" in ENV_IGNORED


def test_streammeta_config_picks_the_file(tmp_path: Path) -> None:
    env_file = _write_toml(tmp_path / "env.toml", {"demo": {"duration": 5.0}})
    arg_file = _write_toml(tmp_path / "arg.toml", {"demo": {"records": 9}})
    env = {"STREAMMETA_CONFIG": str(env_file)}
    assert load_config(env=env).demo.duration == 5.0
    explicit = load_config(arg_file, env=env)  # an explicit path wins over STREAMMETA_CONFIG
    assert (explicit.demo.duration, explicit.demo.records) == (30.0, 9)
    assert load_config(env={"STREAMMETA_CONFIG": ""}) == Config()


# --- conversions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("learner.layer_norm", "true", True),
        ("learner.layer_norm", "YES", True),
        ("learner.layer_norm", "1", True),
        ("learner.layer_norm", "False", False),
        ("learner.layer_norm", "no", False),
        ("learner.layer_norm", "0", False),
        ("learner.hidden", "40,40", (40, 40)),
        ("learner.hidden", " 128 , 64, 8 ", (128, 64, 8)),
        ("learner.hidden", "", ()),
        ("learner.meta_lr", "1e-3", 0.001),
        ("learner.meta_lr", " 0.5 ", 0.5),
        ("learner.meta_batch", "32", 32),
        ("metrics.port", "65535", 65535),
        ("learner.seed", "-3", -3),
    ],
)
def test_string_conversions(key: str, text: str, expected: object) -> None:
    section, name = key.split(".")
    env_name = f"STREAMMETA_{section.upper()}__{name.upper()}"
    from_env = getattr(getattr(load_config(env={env_name: text}), section), name)
    from_flag = getattr(getattr(load_config(env={}, overrides={key: text}), section), name)
    assert from_env == from_flag == expected
    assert type(from_env) is type(expected)


def test_typed_override_values() -> None:
    cfg = load_config(env={}, overrides={"learner.hidden": [8], "learner.layer_norm": True})
    assert cfg.learner.hidden == (8,) and cfg.learner.layer_norm is True
    assert load_config(env={}, overrides={"demo.duration": 2}).demo.duration == 2.0


# --- errors ----------------------------------------------------------------------------------


def test_error_choice_names_key_value_source_and_choices() -> None:
    (msg,) = _problems(env={"STREAMMETA_LEARNER__OPTIMIZER": "rmsprop"})
    assert msg == (
        "learner.optimizer = 'rmsprop' (from STREAMMETA_LEARNER__OPTIMIZER): "
        "must be one of 'metasgd', 'lopt', 'adam', 'sgd'"
    )


def test_error_out_of_range() -> None:
    (msg,) = _problems(env={}, overrides={"learner.inner_lr": "0"})
    assert msg == "learner.inner_lr = '0' (from flag learner.inner_lr): must be a number > 0"
    (msg,) = _problems(env={"STREAMMETA_METRICS__PORT": "70000"})
    assert "metrics.port = '70000' (from STREAMMETA_METRICS__PORT)" in msg
    assert ">= 0 and <= 65535" in msg
    (msg,) = _problems(env={}, overrides={"learner.hidden": [40, 0]})
    assert "learner.hidden = [40, 0]" in msg and "list of integers >= 1" in msg


def test_error_wrong_type_from_file(tmp_path: Path) -> None:
    path = _write_toml(tmp_path / "c.toml", {"learner": {"meta_batch": 1.5, "layer_norm": "x"}})
    first, second = _problems(path=path, env={})
    bool_fix = "must be true or false (or 1/0, yes/no)"
    assert first == f"learner.layer_norm = 'x' (from {path}): {bool_fix}"
    assert second == f"learner.meta_batch = 1.5 (from {path}): must be an integer >= 1"


@pytest.mark.parametrize("text", ["many", "nan", "inf", "True"])
def test_error_wrong_type_or_not_finite(text: str) -> None:
    (msg,) = _problems(env={"STREAMMETA_DEMO__DURATION": text, "STREAMMETA_DEMO__RECORDS": "1"})
    assert msg == f"demo.duration = {text!r} (from STREAMMETA_DEMO__DURATION): must be a number > 0"


def test_error_bool_is_not_a_number() -> None:
    (msg,) = _problems(env={}, overrides={"learner.meta_batch": True})
    assert msg.startswith("learner.meta_batch = True (from flag learner.meta_batch)")


def test_error_unknown_keys_suggest_the_closest(tmp_path: Path) -> None:
    (msg,) = _problems(env={"STREAMMETA_LEARNER__META_LRR": "1"})
    assert msg == (
        "STREAMMETA_LEARNER__META_LRR = '1' (from STREAMMETA_LEARNER__META_LRR): "
        "unknown key; did you mean 'STREAMMETA_LEARNER__META_LR'?"
    )
    (msg,) = _problems(env={"STREAMMETA_LEARNER_META_LR": "1"})  # single underscore
    assert "did you mean 'STREAMMETA_LEARNER__META_LR'?" in msg
    (msg,) = _problems(env={}, overrides={"learner.optimiser": "sgd"})
    assert msg == (
        "learner.optimiser = 'sgd' (from flag learner.optimiser): "
        "unknown key; did you mean 'learner.optimizer'?"
    )
    path = _write_toml(tmp_path / "c.toml", {"lerner": {"seed": 1}})
    (msg,) = _problems(path=path, env={})
    assert msg == f"lerner.seed = 1 (from {path}): unknown key; did you mean 'learner.seed'?"


def test_error_unknown_section_without_close_match(tmp_path: Path) -> None:
    (msg,) = _problems(env={"STREAMMETA_ZZZ__QQQ": "1"})
    assert "STREAMMETA_ZZZ__QQQ = '1'" in msg
    assert (
        "unknown key; sections are learner, stream, segment, kafka, service, demo, metrics" in msg
    )
    path = tmp_path / "c.toml"
    path.write_text("top = 3\n")
    (msg,) = _problems(path=path, env={})
    assert msg.startswith(f"top = 3 (from {path}): unknown key")


def test_error_bad_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    (msg,) = _problems(env={"STREAMMETA_CONFIG": str(missing)})
    assert str(missing) in msg and "from STREAMMETA_CONFIG" in msg and "No such file" in msg
    broken = tmp_path / "broken.toml"
    broken.write_text("[learner\n")
    (msg,) = _problems(path=broken, env={})
    assert str(broken) in msg and "not valid TOML" in msg


def test_all_errors_are_reported_together(tmp_path: Path) -> None:
    path = _write_toml(tmp_path / "c.toml", {"stream": {"name": "walk"}})
    env = {"STREAMMETA_LEARNER__OPTIMIZER": "rmsprop", "STREAMMETA_NOPE": "1"}
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env, overrides={"metrics.port": -1, "learner.meta_lr": "x"})
    problems = info.value.problems
    assert len(problems) == 5
    text = str(info.value)
    assert text.startswith("5 configuration problems:\n- ")
    for part in ("stream.name = 'walk'", "STREAMMETA_NOPE", "learner.optimizer = 'rmsprop'"):
        assert part in text
    assert "metrics.port = -1 (from flag metrics.port)" in text
    assert "learner.meta_lr = 'x' (from flag learner.meta_lr)" in text


def test_config_error_is_in_the_hierarchy() -> None:
    assert issubclass(ConfigError, StreamMetaError)
    assert issubclass(ConfigError, ValueError)


# --- cross-field checks ----------------------------------------------------------------------


def test_protonet_needs_classification() -> None:
    (msg,) = _problems(env={"STREAMMETA_LEARNER__ALGORITHM": "protonet"})
    assert msg == (
        "learner.algorithm = 'protonet' (from STREAMMETA_LEARNER__ALGORITHM) with "
        "learner.task = 'regression' (default): algorithm 'protonet' needs task 'classification'"
    )
    ok = {"learner.algorithm": "protonet", "learner.task": "classification", "learner.n_classes": 5}
    assert load_config(env={}, overrides=ok).learner.n_classes == 5


@pytest.mark.parametrize(("task", "n_classes"), [("classification", 0), ("classification", 1)])
def test_classification_needs_two_classes(task: str, n_classes: int) -> None:
    flags = {"learner.task": task, "learner.n_classes": n_classes}
    (msg,) = _problems(env={}, overrides=flags)
    assert "learner.task = 'classification' (from flag learner.task)" in msg
    assert f"learner.n_classes = {n_classes} (from flag learner.n_classes)" in msg
    assert "n_classes must be >= 2 for task 'classification'" in msg


def test_regression_needs_zero_classes() -> None:
    (msg,) = _problems(env={}, overrides={"learner.n_classes": 3})
    assert "learner.n_classes = 3" in msg and "0 for task 'regression'" in msg


def test_labels_and_feature_names_are_lists_matching_the_counts() -> None:
    cfg = load_config(
        env={"STREAMMETA_LEARNER__FEATURE_NAMES": "u,v"},
        overrides={"learner.n_features": 2, "learner.task": "classification",
                   "learner.n_classes": 2, "learner.labels": ["cat", "dog"]},
    )  # fmt: skip
    assert cfg.learner.labels == ("cat", "dog") and cfg.learner.feature_names == ("u", "v")
    (msg,) = _problems(
        env={},
        overrides={"learner.task": "classification", "learner.n_classes": 3,
                   "learner.labels": "cat,dog"},
    )  # fmt: skip
    assert "learner.labels = 'cat,dog'" in msg and "one label per class" in msg
    (msg,) = _problems(env={}, overrides={"learner.feature_names": "u,v"})
    assert "one name per feature" in msg


# --- the objects -----------------------------------------------------------------------------


def test_frozen() -> None:
    cfg = load_config(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.learner.meta_lr = 0.1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.learner = LearnerConfig()  # type: ignore[misc]


def test_direct_construction_is_validated_and_normalized() -> None:
    assert LearnerConfig(hidden=[8, 8]).hidden == (8, 8)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"learner\.meta_lr = -1\.0 \(argument\): must be"):
        LearnerConfig(meta_lr=-1.0)
    with pytest.raises(ConfigError, match="needs task 'classification'"):
        dataclasses.replace(load_config(env={}).learner, algorithm="protonet")


def test_describe_fields_covers_every_field() -> None:
    rows = describe_fields()
    keys = [key for key, *_ in rows]
    assert keys == [f"{s}.{k}" for s, table in to_dict(Config()).items() for k in table]
    assert all(kind and help_text for _, kind, _, help_text in rows)
    assert rows[-1][:3] == ("log.format", "text|json", "text")
    assert ("stream.name", "|".join(STREAMS.names), "sinusoid") in [row[:3] for row in rows]
    assert [f.name for f in dataclasses.fields(Config)] == [
        "learner",
        "stream",
        "segment",
        "kafka",
        "service",
        "demo",
        "metrics",
        "meta",
        "log",
    ]


def test_to_dict_round_trips_through_load(tmp_path: Path) -> None:
    flags = {
        "learner.task": "classification",
        "learner.algorithm": "protonet",
        "learner.n_classes": 4,
        "learner.hidden": "16,8",
        "learner.layer_norm": "yes",
        "learner.meta_lr": "0.05",
        "learner.device": "cpu",
        "stream.records": "1000",
        "demo.out": "some/where",
        "metrics.port": "9100",
    }
    cfg = load_config(env={}, overrides=flags)
    tables = to_dict(cfg)
    assert tables["learner"]["hidden"] == [16, 8]
    path = _write_toml(tmp_path / "snapshot.toml", tables)
    assert load_config(path, env={}) == cfg
    assert to_dict(load_config(env={})) == to_dict(Config())


def test_error_detectors_need_a_classifier() -> None:
    (msg,) = _problems(env={}, overrides={"segment.detector": "ddm"})
    assert msg.startswith(
        "segment.detector = 'ddm' (from flag segment.detector) with "
        "learner.task = 'regression' (default): error detectors read a classifier's 0/1 error"
    )
    flags = {"segment.detector": "ddm", "learner.task": "classification", "learner.n_classes": 2}
    assert load_config(env={}, overrides=flags).segment.detector == "ddm"


def test_kafka_secrets_come_from_env_or_file_and_are_never_fields(tmp_path: Path) -> None:
    from streammeta.config import KafkaConfig, kafka_secrets

    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    cfg = KafkaConfig(sasl_password_file=str(secret))
    assert kafka_secrets(cfg, env={}) == {"sasl_password": "from-file"}
    env = {"STREAMMETA_KAFKA_SASL_PASSWORD": "from-env"}
    assert kafka_secrets(cfg, env=env) == {"sasl_password": "from-env"}
    assert load_config(env=env).kafka.sasl_password_file == ""  # not an unknown key either
    assert "from-env" not in repr(load_config(env=env))
    with pytest.raises(ConfigError, match=r"kafka\.ssl_key_password_file = '/nope'.*STREAMMETA_"):
        kafka_secrets(KafkaConfig(ssl_key_password_file="/nope"), env={})


def test_sasl_needs_a_user_name() -> None:
    (msg,) = _problems(env={}, overrides={"kafka.security_protocol": "SASL_SSL"})
    assert "kafka.security_protocol = 'SASL_SSL'" in msg and "kafka.sasl_username" in msg


# --- broker addresses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "servers",
    ["", "kafka:9092", "a.example.com:1,b:65535", "10.0.0.2:9092, 10.0.0.3:9092", "[::1]:9092"],
)
def test_bootstrap_servers_accepts_host_port_lists(servers: str) -> None:
    cfg = load_config(env={}, overrides={"kafka.bootstrap_servers": servers})
    assert cfg.kafka.bootstrap_servers == servers


@pytest.mark.parametrize("servers", ["foo:bar", "kafka", "a:0", "a:65536", "a:1,", "a:1,,b:2", " "])
def test_bootstrap_servers_without_a_valid_port_name_the_value_and_the_fix(servers: str) -> None:
    (msg,) = _problems(env={"STREAMMETA_KAFKA__BOOTSTRAP_SERVERS": servers})
    assert msg.startswith(
        f"kafka.bootstrap_servers = {servers!r} (from STREAMMETA_KAFKA__BOOTSTRAP_SERVERS): "
        "must be HOST:PORT[,HOST:PORT...] with each PORT from 1 to 65535"
    )
    assert "'localhost:9092'" in msg  # an example of what works


# --- secrets -----------------------------------------------------------------------------------


SECRET = "hunter2-secret-value"


def test_a_password_in_the_environment_is_never_echoed() -> None:
    (msg,) = _problems(env={"STREAMMETA_KAFKA__SASL_PASSWORD": SECRET})
    assert SECRET not in msg
    assert msg.startswith(
        "STREAMMETA_KAFKA__SASL_PASSWORD = '***' (from STREAMMETA_KAFKA__SASL_PASSWORD): "
        "unknown key; passwords are never configuration keys"
    )
    assert "STREAMMETA_KAFKA_SASL_PASSWORD" in msg and "kafka.sasl_password_file" in msg


def test_a_password_in_the_toml_file_is_never_echoed(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        f'password = "{SECRET}"\n[kafka]\nsasl_password = "{SECRET}"\n'
        f'[kafka.sasl]\ntoken = "{SECRET}"\n[[learner]]\napi_key = "{SECRET}"\n'
    )
    problems = _problems(path=path, env={})
    assert len(problems) == 4
    assert not any(SECRET in p for p in problems), problems
    assert f"kafka.sasl_password = '***' (from {path}): unknown key; passwords" in problems[1]
    assert "kafka.sasl = {token = '***'}" in problems[2]


def test_a_password_as_an_override_is_never_echoed() -> None:
    (msg,) = _problems(env={}, overrides={"kafka.ssl_key_password": SECRET})
    assert SECRET not in msg and "kafka.ssl_key_password = '***'" in msg


def test_password_files_are_paths_and_are_shown(tmp_path: Path) -> None:
    path = _write_toml(tmp_path / "c.toml", {"kafka": {"sasl_password_file": 3}})
    (msg,) = _problems(path=path, env={})
    assert msg == f"kafka.sasl_password_file = 3 (from {path}): must be a string"
    (msg,) = _problems(env={}, overrides={"kafka.sasl_password_fil": "/run/pw"})
    assert "/run/pw" not in msg  # a misspelt key may hold the password itself


# --- registries and import weight ------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "registry"),
    [
        ("learner.algorithm", ALGORITHMS),
        ("learner.optimizer", INNER_OPTIMIZERS),
        ("learner.baseline", BASELINES),
        ("segment.detector", SEGMENTERS),
        ("kafka.client", KAFKA_CLIENTS),
        ("stream.name", STREAMS),
    ],
)
def test_choices_and_help_come_from_the_registry(key: str, registry: Registry) -> None:
    kind, help_text = next((k, h) for name, k, _, h in describe_fields() if name == key)
    choices = kind.split("|")
    assert choices[-len(registry) :] == list(registry.names)  # after 'none' or 'auto', if any
    assert set(choices[: -len(registry)]) <= {"none", "auto"}
    assert registry.help() in help_text  # every entry, explained


def test_the_error_detector_rule_names_every_loss_detector() -> None:
    (msg,) = _problems(env={}, overrides={"segment.detector": SEGMENTERS.tagged("error")[0]})
    assert f"pick a loss detector ({', '.join(SEGMENTERS.tagged('loss'))})" in msg


@pytest.mark.parametrize("module", ["streammeta", "streammeta.config"])
def test_importing_the_config_loads_no_heavy_library(module: str) -> None:
    heavy = ("torch", "river", "numpy", "scipy", "sklearn")
    code = f"import sys, {module}; print(sorted(set({heavy!r}) & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
