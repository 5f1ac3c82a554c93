"""The Grafana dashboards cannot rot: every panel's query names metrics the services export.

The exported names are read from the real registries (lorag_core.metrics, the lora-service's
serving metrics, FastStream's Kafka Prometheus middleware), not from a list kept by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
METRIC = re.compile(r"\b((?:lorag|faststream)_[a-zA-Z0-9_]+)")


def exported_series() -> set[str]:
    """Every series name a lorag process can expose: lorag_* and FastStream's faststream_*."""
    from faststream.kafka.prometheus import KafkaPrometheusMiddleware
    from prometheus_client import REGISTRY

    import lorag_core.metrics  # noqa: F401  (registers the lorag_* families)
    import lorag_lora.serving.metrics  # noqa: F401

    kafka = CollectorRegistry()
    KafkaPrometheusMiddleware(registry=kafka, app_name="probe")
    names = set()
    for registry in (REGISTRY, kafka):
        for family in text_string_to_metric_families(generate_latest(registry).decode()):
            names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
    return names


def prometheus_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every Prometheus target, nested rows included."""
    found = []
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop()
        panels += panel.get("panels", [])
        for target in panel.get("targets", []):
            source = target.get("datasource") or panel.get("datasource") or {}
            if source.get("type") == "prometheus":
                found.append((panel["title"], target["expr"]))
    return found


def named_metrics(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label matchers and quoted strings left out)."""
    bare = re.sub(r'"[^"]*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    return set(METRIC.findall(bare))


def test_there_are_jobs_and_serving_dashboards() -> None:
    uids = {json.loads(path.read_text())["uid"] for path in DASHBOARDS}
    assert {"lorag-jobs", "lorag-serving"} <= uids


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_queries_exported_metrics(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    exported = exported_series()
    queries = prometheus_queries(dashboard)
    assert queries, f"{path.name} has no Prometheus panel"
    for title, expr in queries:
        names = named_metrics(expr)
        assert names, f"{path.name}: panel {title!r} names no lorag metric: {expr}"
        unknown = names - exported
        assert not unknown, f"{path.name}: panel {title!r} queries {sorted(unknown)}, not exported"


def test_jobs_dashboard_links_jobs_to_their_traces() -> None:
    jobs = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "lorag-jobs.json").read_text())
    trace_panels = [p for p in jobs["panels"] if (p.get("datasource") or {}).get("type") == "tempo"]
    assert trace_panels and "lorag.job_id" in trace_panels[0]["targets"][0]["query"]
    assert any("tempo" in link["url"] for link in jobs["links"])


def test_the_check_catches_a_renamed_metric() -> None:
    assert named_metrics('sum(rate(lorag_jobs_finishd_total{outcome="FAILED"}[5m]))') == {
        "lorag_jobs_finishd_total"
    }
    assert "lorag_jobs_finishd_total" not in exported_series()
    assert "lorag_jobs_finished_total" in exported_series()
