"""The shipped Grafana dashboard parses and queries only metrics this process declares."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ccbridge.observability.metrics import Metrics

DASHBOARD = Path(__file__).parents[3] / "docs" / "grafana" / "ccbridge-dashboard.json"
METRICS_DOC = Path(__file__).parents[3] / "docs" / "metrics.md"
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")
_SERIES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


def _declared() -> set[str]:
    metrics = Metrics()
    metrics.ami.watch(lambda: _Status())
    metrics.floor.watch_calls(list, lambda: None)  # type: ignore[arg-type,return-value]
    metrics.events.watch_journal(lambda: 0)
    metrics.events.watch_webhooks(lambda: 0, lambda: 0)
    metrics.events.watch_ftp(lambda: 0)
    metrics.ha.watch(lambda: False, lambda: 0, lambda: 0)
    metrics.ha.watch_forwarding(lambda: 0, lambda: 0)
    metrics.ha.watch_cluster(lambda: True)
    names = set()
    for family in metrics.registry.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SERIES.get(family.type, ()))
    return names


class _Status:
    connected = logged_in = False
    reconnects = queue_depth = events_received = events_dropped = 0


def _queried() -> set[str]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in doc["panels"] for t in p["targets"]]
    assert exprs
    return {m for e in exprs for m in re.findall(r"\bccbridge_[a-z_]+", e)}


def test_every_metric_the_dashboard_queries_exists() -> None:
    declared = _declared()
    missing = {m for m in _queried() if m not in declared}
    assert not missing, f"the dashboard queries undeclared metrics: {sorted(missing)}"


def test_every_declared_metric_is_documented() -> None:
    text = METRICS_DOC.read_text(encoding="utf-8")
    families = {n for n in _declared() if not n.endswith(_SUFFIXES)}
    undocumented = {n for n in families if f"`{n}" not in text}
    assert not undocumented, f"docs/metrics.md misses {sorted(undocumented)}"
