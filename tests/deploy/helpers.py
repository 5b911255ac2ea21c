"""What the deploy tests read: the files under deploy/, the PromQL of the dashboard and the rules,
the metric names an expression reads, and the names the service declares.

>>> sorted(metric_names('sum by (le) (rate(a_bucket{x="b c"}[5m])) / on (i) b offset 1m > 0'))
['a_bucket', 'b']
>>> to_promql('rate(x{instance=~"$instance"}[$__rate_interval])')
'rate(x{instance=~".*"}[1m])'
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from streammeta.bench.prometheus import panels
from streammeta.bench.prometheus import to_promql as grafana_to_promql
from streammeta.metrics.export.prometheus import PrometheusSensor

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "streammeta.json"
RULES = DEPLOY / "prometheus" / "rules.yml"
PROMETHEUS_YML = DEPLOY / "prometheus" / "prometheus.yml"
#: Series that Prometheus itself provides for every target.
PROMETHEUS_SERIES = frozenset({"up"})

#: Grafana's variables, replaced by values that suit a run of a minute scraped every second.
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval_ms": "5000",
    "__interval": "5s",
    "__range_s": "300",
    "__range_ms": "300000",
    "__range": "5m",
    "instance": ".*",
}
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left"}
    | {"group_right", "offset", "inf", "nan"}
)
# the series' suffixes that each family type exposes
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def dashboard_queries(dash: dict[str, Any]) -> list[tuple[str, str]]:
    """``(where, expr)`` of every panel target and every Prometheus annotation query."""
    out = [
        (f"panel {p['title']!r} target {t['refId']}", t["expr"])
        for p in panels(dash)
        for t in p["targets"]
    ]
    for a in dash["annotations"]["list"]:
        if a["datasource"].get("type") == "prometheus":
            out.append((f"annotation {a['name']!r}", a["target"]["expr"]))
    return out


def rules() -> list[dict[str, Any]]:
    """Every rule of rules.yml, with the name of its group under ``group``."""
    return [
        {**rule, "group": group["name"]}
        for group in load_yaml(RULES)["groups"]
        for rule in group["rules"]
    ]


def to_promql(expr: str) -> str:
    """``expr`` with Grafana's variables replaced by :data:`GRAFANA_VARIABLES`."""
    return grafana_to_promql(expr, GRAFANA_VARIABLES)


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects (functions, keywords, labels and durations left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # label lists
    text = re.sub(r"\boffset\s+-?[\w$]+|@\s*[\w.()]+", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w.:])[A-Za-z_:][\w:]*", text):
        follows = text[m.end() :].lstrip()
        if m.group() not in _KEYWORDS and not follows.startswith("("):
            names.add(m.group())
    return names


def declared_metrics() -> set[str]:
    """Every series name the service's sensor exposes: samples present now and, for families
    without samples yet (labelled ones), the names their type implies."""
    registry = CollectorRegistry()
    PrometheusSensor(registry)
    names = set()
    for family in registry.collect():
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def recorded_metrics() -> set[str]:
    """The names the recording rules of rules.yml define."""
    return {rule["record"] for rule in rules() if "record" in rule}
