"""The targets an adaptation run checks, per stream, from its results: each with the measured
figure, the goal and whether it is met.

>>> rows = {"maml+metasgd": {"prequential_loss": 1.0, "recovery_samples_median": 40.0,
...                          "post_boundary_loss": 2.0, "detected_fraction": None},
...         "online_adam": {"prequential_loss": 2.0, "recovery_samples_median": 100.0}}
>>> results = {"streams": {"sinusoid": {"learners": rows, "default_learner": "maml+metasgd",
...                                     "task": "regression", "known_switches": True}}}
>>> [(t["target"], t["value"], t["met"]) for t in targets(results)]
[("MSE / online_adam's", 0.5, True), ("recovery / online_adam's", 0.4, True)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streammeta.bench.adaptation.variants import META_OFF, NO_SWITCH, ORACLE, SINGLE, YARDSTICK

__all__ = ["bank_targets", "targets"]


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issues' targets per stream, each with the measured figure and whether it is met:
    quality at least the yardstick's (accuracy, or MSE for regression), recovery at most half
    of ``online_adam``'s, meta-learning better than none after a boundary, detection, and the
    bank's (:func:`bank_targets`)."""
    checks: list[dict[str, Any]] = []
    for stream, entry in results["streams"].items():
        rows, default = entry["learners"], entry["default_learner"]

        def check(what: str, value: Any, goal: str, ok: bool | None, s: str = stream) -> None:
            checks.append({"stream": s, "target": what, "value": value, "goal": goal, "met": ok})

        # meta-learning on against off, both told the switches: segmentation set aside
        told = rows.get(f"{default}{ORACLE}", {}).get("post_boundary_loss")
        told_off = rows.get(f"{default}{META_OFF}{ORACLE}", {}).get("post_boundary_loss")
        if told is not None and told_off:
            ratio = told / told_off
            check("told switches: post-boundary loss / meta-off's", ratio, "< 1", ratio < 1)
        me = rows.get(default)
        if me is None:
            continue

        classes = entry["task"] == "classification"
        for peer in YARDSTICK:
            theirs = rows.get(peer)
            if theirs is None:
                continue
            if classes:
                gap = me["prequential_accuracy"] - theirs["prequential_accuracy"]
                check(f"accuracy - {peer}'s", gap, ">= 0", gap >= 0)
            else:
                ratio = me["prequential_loss"] / theirs["prequential_loss"]
                check(f"MSE / {peer}'s", ratio, "<= 1", ratio <= 1)
        bank_targets(check, rows, default, classes)
        mine = me["recovery_samples_median"]
        theirs_rec = rows.get("online_adam", {}).get("recovery_samples_median")
        if mine is not None and theirs_rec:
            ratio = mine / theirs_rec
            check("recovery / online_adam's", ratio, "<= 0.5", ratio <= 0.5)
        off = rows.get(f"{default}{META_OFF}", {}).get("post_boundary_loss")
        if off and me["post_boundary_loss"] is not None:
            ratio = me["post_boundary_loss"] / off
            check("post-boundary loss / meta-off's", ratio, "< 1", ratio < 1)
        if entry["known_switches"] and me["detected_fraction"] is not None:
            check(
                "detected fraction",
                me["detected_fraction"],
                ">= 0.9",
                me["detected_fraction"] >= 0.9,
            )
            delay = me["detection_delay_median"]
            check("median detection delay", delay, "< 100", delay is not None and delay < 100)
            check(
                "false alarms per 10k",
                me["false_alarms_per_10k"],
                "< 1",
                me["false_alarms_per_10k"] < 1,
            )
    return checks


def bank_targets(
    check: Callable[[str, Any, str, bool | None], None],
    rows: dict[str, dict[str, Any]],
    default: str,
    classes: bool,
) -> None:
    """The bank's targets: self-segmenting within 10% of told switches (prequential and
    post-boundary loss), a returning concept at most a fifth of its first appearance's
    post-boundary loss, no loss to switch detection on a stream without switches (1%), ARF
    matched where the single learner was below it, and at least half the single learner's
    records/s."""
    me = rows[default]
    told = rows.get(f"{default}{ORACLE}")
    for key, what in (("prequential_loss", "loss"), ("post_boundary_loss", "post-boundary loss")):
        if told and me.get(key) is not None and told.get(key):
            ratio = me[key] / told[key]
            check(f"{what} / told switches'", ratio, "<= 1.1", ratio <= 1.1)
    back = me.get("return_vs_first")
    if back is not None:
        check(
            "post-boundary loss: concept's return / first appearance", back, "<= 0.2", back <= 0.2
        )
    quiet = rows.get(f"{default}{NO_SWITCH}")
    if quiet:
        if classes:
            ratio = me["prequential_accuracy"] / quiet["prequential_accuracy"]
            check("accuracy / no switch detection's", ratio, ">= 0.99", ratio >= 0.99)
        else:
            ratio = me["prequential_loss"] / quiet["prequential_loss"]
            check("loss / no switch detection's", ratio, "<= 1.01", ratio <= 1.01)
    single, arf = rows.get(f"{default}{SINGLE}"), rows.get("river_arf")
    if (
        classes
        and single is not None
        and arf is not None
        and single["prequential_accuracy"] < arf["prequential_accuracy"]
    ):
        gap = me["prequential_accuracy"] - arf["prequential_accuracy"]
        check("accuracy - river_arf's (single learner below)", gap, ">= 0", gap >= 0)
    if single and single.get("records_per_s"):
        ratio = me["records_per_s"] / single["records_per_s"]
        check("records/s / single learner's", ratio, ">= 0.5", ratio >= 0.5)
