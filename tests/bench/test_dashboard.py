"""The dashboard renderer reads the dashboard it claims to draw."""

from __future__ import annotations

import json

from streammeta.bench.dashboard import DASHBOARD, MAIN_PANELS, panel_queries


def test_every_main_panel_is_in_the_dashboard_with_its_queries() -> None:
    panels = dict(panel_queries(json.loads(DASHBOARD.read_text())))
    missing = [title for title in MAIN_PANELS if title not in panels]
    assert not missing, f"renamed or removed in {DASHBOARD}: {missing}"
    assert all(expr and "streammeta_" in expr for t in MAIN_PANELS for expr, _ in panels[t])
