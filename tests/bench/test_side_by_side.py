"""``bench throughput``'s side-by-side rows: the background variant and the table's content."""

from __future__ import annotations

from streammeta.bench.adaptation.variants import ASYNC, build_variant
from streammeta.bench.report import side_by_side_table
from streammeta.config import load_config
from streammeta.learn.learner import MetaLearner


def test_the_async_variant_meta_trains_in_the_background() -> None:
    learner = build_variant(f"maml+metasgd{ASYNC}", load_config(env={}).learner)
    assert isinstance(learner, MetaLearner) and learner.meta_worker is not None
    inline = build_variant("maml+metasgd", load_config(env={}).learner)
    assert isinstance(inline, MetaLearner) and inline.meta_worker is None


def test_the_table_shows_speed_beside_quality_for_every_learner() -> None:
    rows = {
        "maml+metasgd": {
            "records_per_s": 412.3,
            "prequential_accuracy": 0.971,
            "post_boundary_loss": 0.195,
            "meta_updates_per_s": 41.04,
        },
        "river_logreg": {
            "records_per_s": 62178.0,
            "prequential_accuracy": 0.926,
            "post_boundary_loss": 0.224,
            "meta_updates_per_s": None,
        },
    }
    lines = side_by_side_table("sea", rows)
    assert lines[0].startswith("| sea: learner | records/s | prequential accuracy")
    assert lines[2] == "| maml+metasgd | 412 | 0.971 | 0.195 | 41.0 |"
    assert lines[3] == "| river_logreg | 62,178 | 0.926 | 0.224 | - |"
