"""The command line: ``streammeta broker`` and ``streammeta simulate`` end to end, as
subprocesses; every mistake at start-up as one line with exit code 2 and never a secret; Ctrl-C
during start-up; the short options, the exit codes, and ``bench fuzz``'s wiring."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streammeta.cli import build_parser, config_from_args, main
from streammeta.config import KafkaConfig
from streammeta.io import Decoder, ensure_topics, open_source
from streammeta.io.broker import free_port
from streammeta.logs import reset_logging
from streammeta.runtime.checkpoint import CheckpointStore
from streammeta.streams import make_stream
from tests.io.helpers import drain

STREAMMETA = [sys.executable, "-m", "streammeta.cli"]
SECRET = "hunter2-not-for-logs"


@pytest.mark.parametrize("command", ["broker", "simulate"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: streammeta" in capsys.readouterr().out


@pytest.mark.broker
def test_broker_command_serves_until_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*STREAMMETA, "broker", "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.strip() == f"broker listening on 127.0.0.1:{port}"
        cfg = KafkaConfig(bootstrap_servers=f"127.0.0.1:{port}")
        assert ensure_topics(cfg, ["cli-check"], client="kafka-python") == ["cli-check"]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "broker stopped" in out
    finally:
        proc.kill()


@pytest.mark.broker
@pytest.mark.parametrize("batch_size", [1, 10])
def test_simulate_publishes_the_stream(
    kafka_cfg: Callable[..., KafkaConfig], batch_size: int
) -> None:
    cfg = kafka_cfg()
    n = 120
    done = subprocess.run(
        [*STREAMMETA, "simulate", "--bootstrap-servers", cfg.bootstrap_servers,
         "--topic", cfg.input_topic, "--stream", "sinusoid", "--records", str(n), "--seed", "3",
         "--batch-size", str(batch_size), "--rate", "2000", "--client", "kafka-python"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    messages = n // batch_size
    assert re.search(
        rf"sent {n} records in {messages} messages to '{cfg.input_topic}'", done.stdout
    )
    with open_source(cfg) as source:
        source.assign([(cfg.input_topic, 0)])
        got = drain(source, messages)
    decoded = Decoder(n_features=1).decode(got)
    assert decoded.dead == [] and len(decoded.records) == n
    expected = make_stream("sinusoid", task_length=100, seed=3).take(n)
    np.testing.assert_array_equal(decoded.records.x, expected.x)
    np.testing.assert_array_equal(decoded.records.y, expected.y)
    assert decoded.records.task.tolist() == expected.task.tolist()


def test_simulate_without_brokers_names_the_fix() -> None:
    done = subprocess.run(
        [*STREAMMETA, "simulate", "--records", "5"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("STREAMMETA_")},
    )
    assert done.returncode == 2 and "--bootstrap-servers" in done.stderr


# --- mistakes at start-up: one line, exit code 2, no traceback, no secret -------------------


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMMETA_")}
    return {**env, **extra}


@pytest.fixture
def no_streammeta_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [k for k in os.environ if k.startswith("STREAMMETA_")]:
        monkeypatch.delenv(name)
    root = logging.getLogger()
    level = root.level
    yield
    reset_logging()
    root.setLevel(level)


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's way out
        return int(exc.code or 0)


def _one_line(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    """What ``main(argv)`` says on stderr: one line, no traceback, exit code ``code``."""
    got = _exit_code(argv)
    captured = capsys.readouterr()
    assert got == code, captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    return captured.err


def test_run_without_brokers_says_how_to_give_them_in_a_process() -> None:
    done = subprocess.run(
        [*STREAMMETA, "run"], capture_output=True, text=True, timeout=120, env=_clean_env()
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    for part in (
        "kafka.bootstrap_servers is empty",
        "--bootstrap-servers HOST:PORT",
        "STREAMMETA_KAFKA__BOOTSTRAP_SERVERS",
        "`streammeta broker`",
    ):
        assert part in done.stderr


def test_a_checkpoint_directory_under_a_file_stops_start_up_in_a_process(
    tmp_path: Path,
) -> None:
    (tmp_path / "file").write_text("")
    directory = tmp_path / "file" / "ckpt"
    done = subprocess.run(
        [*STREAMMETA, "run", "--bootstrap-servers", "127.0.0.1:9", "--checkpoint-dir",
         str(directory), "--log-level", "WARNING"],
        capture_output=True, text=True, timeout=120, env=_clean_env(),
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"streammeta: service.checkpoint_dir = '{directory}': cannot create")
    assert "a part of the path is a file" in last and "--checkpoint-dir DIR" in last


@pytest.mark.usefixtures("no_streammeta_env")
def test_a_broker_address_without_a_valid_port_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = _one_line(["run", "--bootstrap-servers", "foo:bar"], capsys)
    assert err.startswith(
        "streammeta: configuration error: kafka.bootstrap_servers = 'foo:bar' (from flag "
        "kafka.bootstrap_servers): must be HOST:PORT[,HOST:PORT...] with each PORT from 1 to 65535"
    )


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["run", "--kafka.bootstrap_server", "x:1"],
         "streammeta run: unknown option --kafka.bootstrap_server; "
         "did you mean --kafka.bootstrap_servers?"),
        (["demo", "--duraton", "3"],
         "streammeta demo: unknown option --duraton; did you mean --duration?"),
        (["run", "--checkpoint", "d"],
         "streammeta run: unknown option --checkpoint; did you mean --checkpoint-dir?"),
        (["bench", "fuzz", "--out", "x", "--round", "2"],
         "streammeta bench fuzz: unknown option --round; did you mean --rounds?"),
        (["run", "--zzz"], "streammeta run: unknown option --zzz; see `streammeta run --help`"),
        (["run", "stray"],
         "streammeta run: unexpected argument 'stray'; see `streammeta run --help`"),
    ],
)  # fmt: skip
def test_an_unknown_option_names_the_closest_one(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _one_line(argv, capsys) == said + "\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--kafka.sasl_password", SECRET],
        ["run", "--kafka.sasl_password=" + SECRET],
        ["run", "--kafka.sasl_passwor", SECRET],  # no prefix match of --kafka.sasl_password_file
        ["config", "--kafka.ssl_key_password", SECRET],
    ],
)
def test_a_password_flag_is_an_unknown_option_whose_value_is_never_shown(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    err = _one_line(argv, capsys)
    assert SECRET not in err
    assert "unknown option --kafka." in err and "(its value is not shown)" in err
    assert "STREAMMETA_KAFKA_SASL_PASSWORD" in err and "kafka.sasl_password_file" in err


@pytest.mark.usefixtures("no_streammeta_env")
def test_a_password_in_the_environment_or_the_toml_file_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAMMETA_KAFKA__SASL_PASSWORD", SECRET)
    err = _one_line(["config"], capsys)
    assert SECRET not in err and "STREAMMETA_KAFKA__SASL_PASSWORD = '***'" in err
    monkeypatch.delenv("STREAMMETA_KAFKA__SASL_PASSWORD")
    path = tmp_path / "c.toml"
    path.write_text(f'[kafka]\nsasl_password = "{SECRET}"\n')
    err = _one_line(["run", "--config", str(path)], capsys)
    assert SECRET not in err and "kafka.sasl_password = '***'" in err


def test_no_parser_matches_prefixes() -> None:
    parsers = [build_parser()]
    for parser in parsers:
        assert parser.allow_abbrev is False, parser.prog
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += action.choices.values()
    assert {p.prog for p in parsers} >= {"streammeta run", "streammeta bench fuzz"}


# --- start-up with the service faked ------------------------------------------------------


def _fake_build(
    monkeypatch: pytest.MonkeyPatch, fail: BaseException | Callable[[Any], Any]
) -> None:
    """``build_service`` raises ``fail``, or returns what it makes of the config."""

    def build(config: Any, **_: Any) -> Any:
        if isinstance(fail, BaseException):
            raise fail
        return fail(config)

    monkeypatch.setattr("streammeta.runtime.service.build_service", build)


@pytest.mark.usefixtures("no_streammeta_env")
def test_ctrl_c_during_start_up_is_one_line_and_exit_code_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_build(monkeypatch, KeyboardInterrupt())
    err = _one_line(["run", "--bootstrap-servers", "127.0.0.1:9"], capsys, code=130)
    assert err == "streammeta: interrupted during start-up\n"


@pytest.mark.usefixtures("no_streammeta_env")
def test_a_checkpoint_directory_that_cannot_be_made_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_build(monkeypatch, lambda config: CheckpointStore(config.service.checkpoint_dir))
    (tmp_path / "file").write_text("")
    argv = ["run", "--bootstrap-servers", "127.0.0.1:9", "--checkpoint-dir"]
    err = _one_line([*argv, str(tmp_path / "file")], capsys)
    assert err.startswith(f"streammeta: service.checkpoint_dir = '{tmp_path / 'file'}'")
    assert "a file of that name is in the way" in err


@pytest.mark.usefixtures("no_streammeta_env")
def test_run_logs_the_metrics_address_it_bound_in_the_chosen_format(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_build(monkeypatch, KeyboardInterrupt())
    port = free_port()
    argv = ["run", "--bootstrap-servers", "127.0.0.1:9", "--metrics-port", str(port),
            "--metrics.host", "0.0.0.0", "--log-format", "json"]  # fmt: skip
    assert main(argv) == 130
    first = json.loads(capsys.readouterr().err.splitlines()[0])
    assert first["level"] == "INFO" and first["message"] == (
        f"serving /metrics, /healthz and /readyz on http://0.0.0.0:{port} (every interface)"
    )


# --- options, help, bench fuzz --------------------------------------------------------------


@pytest.mark.usefixtures("no_streammeta_env")
def test_demo_and_run_short_options_set_their_config_keys() -> None:
    demo = config_from_args(build_parser().parse_args(
        ["demo", "--duration", "3", "--records", "50", "--metrics-port", "9200",
         "--log-level", "DEBUG", "--log-format", "json"]
    ))  # fmt: skip
    assert (demo.demo.duration, demo.demo.records, demo.metrics.port) == (3.0, 50, 9200)
    assert (demo.log.level, demo.log.format) == ("DEBUG", "json")
    run = config_from_args(
        build_parser().parse_args(["run", "--log-level", "WARNING", "--group", "g"])
    )
    assert (run.log.level, run.kafka.group) == ("WARNING", "g")


def test_run_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    epilog = out[out.index("exit codes:") :]
    for code in ("0", "1", "2", "3", "130"):
        assert re.search(rf"^  {code} +\S", epilog, re.M), code
    assert "service.shutdown_grace" in epilog and "service.offset_reset = fail" in epilog
    assert "--log-level" in out and "--log-format" in out


@pytest.mark.parametrize("ok", [True, False])
def test_bench_fuzz_runs_the_fuzz_benchmark_and_exits_by_its_verdict(
    ok: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Path, dict[str, Any]]] = []

    def run_fuzz(out: Path, **kwargs: Any) -> dict[str, Any]:
        calls.append((out, kwargs))
        return {"ok": ok}

    fake = types.ModuleType("streammeta.bench.fuzz")
    fake.run_fuzz = run_fuzz  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "streammeta.bench.fuzz", fake)
    argv = ["bench", "fuzz", "--out", str(tmp_path), "--rounds", "2", "--client", "kafka-python"]
    assert main(argv) == (0 if ok else 1)
    assert calls == [
        (tmp_path, {"rounds": 2, "records": 2000, "seed": 0, "client": "kafka-python"})
    ]
