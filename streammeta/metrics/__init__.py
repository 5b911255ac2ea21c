"""Evaluation of adaptation, below the run loop: the online tracker, the recovery figures of a
recorded stream, rolling means. The export side (Prometheus, HTTP) is :mod:`.export`, above it."""

__all__: list[str] = []
