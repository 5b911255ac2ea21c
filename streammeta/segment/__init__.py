"""Segmentation: per-record losses or errors in, task boundaries out.

The segmenters are the entries of :data:`streammeta.registry.SEGMENTERS`.
"""

from streammeta.registry import SEGMENTERS
from streammeta.segment.base import FixedWindow, LossJump, NoSegmenter, Segmenter, TaskField
from streammeta.segment.detectors import DetectorSpec, RiverSegmenter

__all__ = [
    "DetectorSpec",
    "FixedWindow",
    "LossJump",
    "NoSegmenter",
    "RiverSegmenter",
    "Segmenter",
    "TaskField",
    "make_segmenter",
]


def make_segmenter(
    name: str, *, min_task_length: int = 50, cooldown: int = 0, window: int = 100
) -> Segmenter:
    """A segmenter by name (``segment.detector``): a river detector, ``loss_jump`` (OSAKA's
    test), ``task`` (explicit field), ``fixed`` windows of ``window`` records, or ``none``."""
    segmenter: Segmenter = SEGMENTERS.load(name).build(
        min_task_length=min_task_length, cooldown=cooldown, window=window
    )
    return segmenter
