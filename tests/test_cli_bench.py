"""The command line, the demo and the benchmark outputs (schemas, files), on tiny runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streammeta.bench.adaptation import AdaptationPlan, run_adaptation
from streammeta.bench.throughput import measure_meta_update, measure_records_per_s
from streammeta.cli import main
from streammeta.config import load_config

ADAPTATION_FIELDS = {  # the fields, on every learner of every stream
    "prequential_loss",
    "prequential_accuracy",
    "recovery_samples_median",
    "post_boundary_loss",
    "detection_delay_median",
    "detected_fraction",
    "false_alarms_per_10k",
    "records_per_s",
}


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["demo", "--help"],
        ["bench", "--help"],
        ["bench", "adaptation", "--help"],
        ["bench", "throughput", "--help"],
        ["config", "--help"],
    ],
)
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: streammeta" in out
    if argv[0] in ("demo", "config"):
        # every config field is documented with its environment variable
        assert "--learner.meta_lr" in out and "STREAMMETA_LEARNER__META_LR" in out


def test_bad_config_stops_with_every_problem(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["config", "--learner.optimizer", "rmsprop", "--stream.task_length", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert "learner.optimizer = 'rmsprop'" in err and "'metasgd', 'lopt', 'adam', 'sgd'" in err
    assert "stream.task_length = '0'" in err


def test_config_precedence_file_env_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[learner]\nmeta_lr = 0.1\nmeta_batch = 8\ninner_steps = 3\n")
    monkeypatch.setenv("STREAMMETA_LEARNER__META_BATCH", "4")
    monkeypatch.setenv("STREAMMETA_LEARNER__INNER_STEPS", "4")
    assert main(["config", "--config", str(path), "--learner.inner_steps", "5"]) == 0
    out = capsys.readouterr().out
    assert "meta_lr = 0.1\n" in out  # file
    assert "meta_batch = 4\n" in out  # env over file
    assert "inner_steps = 5\n" in out  # flag over env


def test_demo_runs_and_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "streammeta.cli",
            "demo",
            "--demo.records",
            "1200",
            "--demo.out",
            str(out),
            "--stream.task_length",
            "50",
            "--demo.bad_every",
            "500",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "report:" in proc.stdout and "records/s" in proc.stdout
    assert re.search(r"metrics\s+http://127\.0\.0\.1:\d+/metrics", proc.stdout)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == 1200 and summary["tasks"] == 24
    assert summary["service"]["dead_letters"] == {"feature_count": 1, "schema": 1}
    assert set(summary["learners"]) == {"maml+metasgd", "online_adam"}
    assert (out / "demo.png").stat().st_size > 10_000
    assert "| maml+metasgd |" in (out / "report.md").read_text()


def test_adaptation_benchmark_writes_the_schema(tmp_path: Path) -> None:
    learners = ("maml+metasgd", "maml+metasgd@oracle", "online_adam", "river_logreg")
    plan = AdaptationPlan(
        streams=("sinusoid", "stagger"), tasks=8, min_task=2, task_length=150, workers=1,
        learners=learners,
    )  # fmt: skip
    results = run_adaptation(plan, load_config(env={}).learner, tmp_path, log=lambda _: None)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["streams"] == json.loads(json.dumps(results["streams"]))
    assert on_disk["segment"]["detector"] == "loss_jump"
    for name, entry in on_disk["streams"].items():
        assert entry["default_learner"] == "maml+metasgd"
        assert entry["records"] == 8 * 150 and entry["warm_up_records"] == 300
        assert entry["true_switches_counted"] == 6
        assert list(entry["learners"]) == list(learners)
        for row in entry["learners"].values():
            assert set(row) >= ADAPTATION_FIELDS
            assert row["records_per_s"] > 0 and row["prequential_loss"] > 0
            assert row["recovery_samples_median"] > 0  # timed from every true switch
        rows = entry["learners"]
        assert rows["maml+metasgd"]["meta_updates"] > 0
        assert rows["maml+metasgd"]["false_alarms_per_10k"] is not None
        for told in ("maml+metasgd@oracle", "river_logreg"):  # nothing of theirs to detect
            assert rows[told]["detected_fraction"] is None
        classify = name == "stagger"
        assert (rows["river_logreg"]["prequential_accuracy"] is not None) == classify
        assert ("mse_after_1_step" in rows["online_adam"]) != classify
        assert (tmp_path / f"adaptation_{name}.png").stat().st_size > 10_000
    assert {t["stream"] for t in on_disk["targets"]} == {"sinusoid", "stagger"}
    assert all(isinstance(t["met"], bool) for t in on_disk["targets"])
    table = (tmp_path / "results.md").read_text()
    assert "| maml+metasgd |" in table and "| stagger | accuracy - river_logreg's |" in table


def test_throughput_measurements_are_live() -> None:
    cfg = load_config(env={}).learner
    with_meta = measure_records_per_s(cfg, 32, 640)
    assert with_meta > 0
    ms = measure_meta_update(cfg, tasks=4, steps=2, repeats=2)
    assert set(ms) == {"vmap", "loop"} and min(ms.values()) > 0


def test_adaptation_plan_is_checked_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "bench",
            "adaptation",
            "--stream",
            "sinusoid,nope",
            "--workers",
            "0",
            "--quick",
            "--out",
            "/nonexistent/never-written",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "stream 'nope': must be one of 'sinusoid'" in err and "workers=0" in err
    with pytest.raises(ValueError, match="task_length=30"):
        AdaptationPlan(task_length=30)
