"""The micro-batch benchmark: a tiny run writes the schema with every cell filled; the command
refuses bad arguments on one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from streammeta.bench.batch_sizes import BASELINE, run_batch_sizes
from streammeta.cli import main
from streammeta.config import LearnerConfig


def test_tiny_run_fills_every_cell(tmp_path: Path) -> None:
    lines: list[str] = []
    results = run_batch_sizes(
        ("sea", "sinusoid_offset"),
        cfg=LearnerConfig(),
        out=tmp_path,
        sizes=(10, 1),
        records=600,
        workers=1,
        log=lines.append,
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert saved["sizes"] == [1, 10] and saved["warm_up_records"] == 120
    assert set(saved["streams"]) == {"sea", "sinusoid_offset"}
    assert set(saved["met"]) == {"sea", "sinusoid_offset"}
    for name, metric in (("sea", "accuracy"), ("sinusoid_offset", "mse")):
        entry = saved["streams"][name]
        assert entry["metric"] == metric
        assert set(entry["learners"]) == {"maml+metasgd", BASELINE}
        for row in entry["learners"].values():
            assert set(row["sizes"]) == {"1", "10"}
            assert row["best_size"] in (1, 10) and math.isfinite(row["best"])
            assert isinstance(row["within_target"], bool)
            for cell in row["sizes"].values():
                assert math.isfinite(cell["score"]) and cell["records_per_s"] > 0
                assert cell["gap"] is not None and isinstance(cell["within_target"], bool)
            best = row["sizes"][str(row["best_size"])]
            assert best["gap"] == (0.0 if metric == "accuracy" else 1.0)
            if metric == "accuracy":
                assert 0 <= row["best"] <= 1
    table = (tmp_path / "results.md").read_text()
    assert "## sea" in table and "## sinusoid_offset" in table
    assert "| maml+metasgd |" in table and f"| {BASELINE} |" in table
    rows = [line.split("|")[2:-1] for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 * 3  # a header and two learners per stream
    assert all(cell.strip() and not cell.strip().startswith("-") for r in rows for cell in r)
    assert any("worst gap" in line for line in lines)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--sizes", "1,ten"], "--sizes '1,ten'"),
        (["--sizes", "0,10"], "sizes=(0, 10)"),
        (["--stream", "nope"], "stream 'nope'"),
        (["--records", "5"], "records=5"),
    ],
)
def test_bad_arguments_stop_on_one_line(
    argv: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "batch-sizes", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
    assert not (tmp_path / "results.json").exists()
