"""The Grafana dashboard queries only metrics the platform really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "meshgate.json"
METRIC = re.compile(r"\bmeshgate_[a-z_]+")
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


async def test_every_dashboard_query_names_an_exported_metric(client: httpx.AsyncClient) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    used = {family(m) for q in queries for m in METRIC.findall(q)}
    exported = {f.name for f in text_string_to_metric_families((await client.get("/metrics")).text)}
    assert used, "the dashboard queries nothing"
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    # Every panel but the rows has a query, and the panel ids are unique.
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert all(p["targets"] for p in panels)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    required = {
        "meshgate_model_requests",
        "meshgate_breaker_state",
        "meshgate_event_lag_seconds",
        "meshgate_rate_limited",
        "meshgate_backend_up",
        "meshgate_alerts_firing",
    }
    assert required <= used
