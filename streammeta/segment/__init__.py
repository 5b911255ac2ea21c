"""Segmentation: per-record losses or errors in, task boundaries out."""

from streammeta.segment.base import FixedWindow, LossJump, NoSegmenter, Segmenter, TaskField
from streammeta.segment.detectors import ERROR_DETECTORS, LOSS_DETECTORS, RiverSegmenter

__all__ = [
    "ERROR_DETECTORS",
    "LOSS_DETECTORS",
    "SEGMENTERS",
    "FixedWindow",
    "LossJump",
    "NoSegmenter",
    "RiverSegmenter",
    "Segmenter",
    "TaskField",
    "make_segmenter",
]

SEGMENTERS = (*LOSS_DETECTORS, *ERROR_DETECTORS, "loss_jump", "task", "fixed", "none")


def make_segmenter(
    name: str, *, min_task_length: int = 50, cooldown: int = 0, window: int = 100
) -> Segmenter:
    """A segmenter by name: a river detector, ``loss_jump`` (OSAKA's test), ``task`` (explicit
    field), ``fixed`` windows of ``window`` records, or ``none``."""
    if name in LOSS_DETECTORS or name in ERROR_DETECTORS:
        return RiverSegmenter(name, min_task_length=min_task_length, cooldown=cooldown)
    if name == "loss_jump":
        return LossJump(min_task_length=min_task_length, cooldown=cooldown)
    if name == "task":
        return TaskField()
    if name == "fixed":
        return FixedWindow(window)
    if name == "none":
        return NoSegmenter()
    raise ValueError(f"segmenter {name!r}: must be one of {', '.join(map(repr, SEGMENTERS))}")
