"""The fuzz benchmark: its catalogue of bad messages, how answers are matched to them, and one
short real round through the embedded broker and ``streammeta run``."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from streammeta.bench.fuzz import run_fuzz
from streammeta.bench.fuzz_checks import Answers, kind_rows
from streammeta.bench.fuzz_kinds import KINDS, Message

CHECKS = {
    "good_records_predicted_once",
    "bad_records_dead_lettered_once",
    "service_never_failed",
    "predictions_strict_json",
    "dead_letters_fit",
}


def test_the_catalogue_has_forty_kinds_each_seeded_and_saying_what_it_expects() -> None:
    assert len(KINDS) >= 40
    for name, make in KINDS.items():
        first, again = make(random.Random(1)), make(random.Random(1))
        assert first == again, name
        assert first.good or first.dead, name
        assert first.expect in ("good", "dead", "mixed")


def test_a_record_answered_twice_or_a_bad_one_predicted_fails_its_kind() -> None:
    expected = {
        0: ("good_record", Message(b"{}", good=(-1,))),
        1: ("good_record", Message(b"{}", good=(-1,))),
        2: ("mixed_batch", Message(b"[]", good=(0, 2), dead=1)),
        3: ("x_string", Message(b"{}", dead=1)),
    }
    got = Answers()
    got.predictions[0] += [-1]
    got.predictions[1] += [-1, -1]  # answered twice
    got.predictions[2] += [0, 1, 2]  # the bad element predicted
    got.dead[3] += ["schema"]
    rows = kind_rows(expected, got)
    assert rows["good_record"]["wrong_good"] == 1 and not rows["good_record"]["ok"]
    assert rows["mixed_batch"]["wrong_dead"] == 1 and rows["mixed_batch"]["wrong_good"] == 0
    assert rows["x_string"] | {"reasons": {"schema": 1}} == rows["x_string"]
    assert rows["x_string"]["ok"]


@pytest.mark.broker
def test_one_round_answers_every_message_exactly_once(tmp_path: Path) -> None:
    summary = run_fuzz(tmp_path, rounds=1, records=200, client="kafka-python", log=lambda _: None)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert "| kind | expect | sent |" in (tmp_path / "summary.md").read_text()
    assert set(summary["checks"]) == CHECKS
    assert summary["distinct_kinds"] == len(KINDS) >= 40
    assert summary["kinds"]["good_record"]["sent"] == 200
    assert {name for name in summary["kinds"] if name != "good_record"} == set(KINDS)
    assert all(row["sent"] == 1 for name, row in summary["kinds"].items() if name in KINDS)
    failing = [name for name, check in summary["checks"].items() if not check["ok"]]
    kinds = [name for name, row in summary["kinds"].items() if not row["ok"]]
    exits = [r["returncode"] for r in summary["rounds"]]
    assert summary["ok"], f"failing checks {failing}, kinds {kinds}; service exit codes {exits}"
