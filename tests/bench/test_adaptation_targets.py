"""The adaptation benchmark's scoring of the bank (streammeta.bench.adaptation): which variants
run where, the post-boundary loss of returning concepts, and the bank's targets."""

from typing import Any

import numpy as np
import pytest

from streammeta.bench.adaptation import AdaptationPlan
from streammeta.bench.adaptation.plan import PreparedStream, learners_for
from streammeta.bench.adaptation.scoring import recurrence
from streammeta.bench.adaptation.targets import bank_targets
from streammeta.bench.adaptation.variants import NO_SWITCH, ORACLE, SINGLE
from streammeta.streams import StreamChunk

DEFAULT = "maml+metasgd"


def _stream(task: np.ndarray, concept: np.ndarray | None, known: bool = True) -> PreparedStream:
    n = len(task)
    chunk = StreamChunk(x=np.zeros((n, 1), np.float32), y=np.zeros(n, np.float32), task=task)
    return PreparedStream(
        name="s", chunk=chunk, kind="regression", n_features=1, n_classes=0,
        known_switches=known, task_length=200, min_task=1, batch_size=10, concept=concept,
    )  # fmt: skip


def test_told_switches_run_where_there_are_switches_and_no_switch_where_there_are_none() -> None:
    plan = AdaptationPlan(
        learners=(DEFAULT, f"{DEFAULT}{ORACLE}", f"{DEFAULT}{NO_SWITCH}", f"{DEFAULT}{SINGLE}")
    )
    switching = _stream(np.repeat(np.arange(3), 200), None)
    still = _stream(np.zeros(600, np.int64), None)
    unknown = _stream(np.zeros(600, np.int64), None, known=False)
    assert learners_for(switching, plan) == [DEFAULT, f"{DEFAULT}{ORACLE}", f"{DEFAULT}{SINGLE}"]
    assert learners_for(still, plan) == [DEFAULT, f"{DEFAULT}{NO_SWITCH}", f"{DEFAULT}{SINGLE}"]
    assert learners_for(unknown, plan) == [DEFAULT, f"{DEFAULT}{SINGLE}"]


def test_recurrence_compares_a_concepts_returns_with_first_appearances_after_the_first_task() -> (
    None
):
    # concepts A B C A B C, tasks of 200: B and C appear first at tasks 1 and 2, and all three
    # come back; the first task (A's first appearance) holds the learner's own start
    task = np.repeat(np.arange(6), 200)
    concept = np.array([0, 1, 2, 0, 1, 2])[task]
    loss = np.full(len(task), 0.01)
    loss[:100] = 100.0  # the learner's start: left out
    for first in (200, 400):
        loss[first : first + 100] = 2.0
    for back in (600, 800, 1000):
        loss[back : back + 50] = 0.2
    figures = recurrence(_stream(task, concept), loss)
    assert figures["first_appearance_loss"] == pytest.approx((2.0 * 100) / 100)
    assert figures["return_loss"] == pytest.approx((0.2 * 50 + 0.01 * 50) / 100)
    assert figures["return_vs_first"] == pytest.approx(0.105 / 2.0)


def _checks(rows: dict[str, dict[str, Any]], classes: bool) -> dict[str, tuple[float, bool]]:
    out: dict[str, tuple[float, bool]] = {}

    def check(what: str, value: Any, goal: str, ok: bool | None) -> None:
        out[what] = (value, bool(ok))

    bank_targets(check, rows, DEFAULT, classes)
    return out


def test_bank_targets_measure_against_told_switches_no_switch_arf_and_the_single_learner() -> None:
    rows = {
        DEFAULT: {
            "prequential_loss": 1.05, "post_boundary_loss": 2.4, "prequential_accuracy": 0.9,
            "records_per_s": 300.0, "return_vs_first": 0.15,
        },
        f"{DEFAULT}{ORACLE}": {"prequential_loss": 1.0, "post_boundary_loss": 2.0},
        f"{DEFAULT}{SINGLE}": {"prequential_accuracy": 0.85, "records_per_s": 500.0},
        "river_arf": {"prequential_accuracy": 0.88},
    }  # fmt: skip
    checks = _checks(rows, classes=True)
    assert checks["loss / told switches'"] == (pytest.approx(1.05), True)
    assert checks["post-boundary loss / told switches'"] == (pytest.approx(1.2), False)
    assert checks["post-boundary loss: concept's return / first appearance"] == (0.15, True)
    assert checks["accuracy - river_arf's (single learner below)"] == (pytest.approx(0.02), True)
    assert checks["records/s / single learner's"] == (pytest.approx(0.6), True)
    # where the single learner already beat ARF, ARF is no target; no told row, no ratio
    rows[f"{DEFAULT}{SINGLE}"]["prequential_accuracy"] = 0.95
    del rows[f"{DEFAULT}{ORACLE}"]
    checks = _checks(rows, classes=True)
    assert "accuracy - river_arf's (single learner below)" not in checks
    assert "loss / told switches'" not in checks


def test_bank_targets_on_a_stream_without_switches_compare_with_no_switch_detection() -> None:
    rows = {
        DEFAULT: {"prequential_loss": 1.02, "records_per_s": 300.0},
        f"{DEFAULT}{NO_SWITCH}": {"prequential_loss": 1.0},
    }
    assert _checks(rows, classes=False)["loss / no switch detection's"] == (
        pytest.approx(1.02),
        False,
    )
