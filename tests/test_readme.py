"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from streammeta.io.base import Sink, Source

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    ran: list[dict[str, Any]] = []
    for block in blocks:
        namespace: dict[str, Any] = {}
        exec(compile(block, "README.md", "exec"), namespace)
        ran.append(namespace)
    learning = [ns for ns in ran if "loss" in ns]  # the learner fed its own records
    assert learning and all(ns["loss"].shape == (10,) for ns in learning)
    testing = [ns for ns in ran if "source" in ns]  # the in-memory topics of streammeta.testing
    assert testing and all(
        isinstance(ns["source"], Source) and isinstance(ns["sink"], Sink) for ns in testing
    )
