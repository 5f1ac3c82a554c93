"""Reading traces back through Jaeger's query API (the test stack's Jaeger)."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

SERVICES = ("gateway", "rag-service", "lora-service", "hybrid-orchestrator", "migration-service")


@dataclass(frozen=True)
class Span:
    name: str
    service: str
    span_id: str
    parent_id: str | None
    start_us: int
    tags: dict[str, Any]


def query_url() -> str:
    return os.environ["LORAG_OTEL_TRACE_UI_URL"].rstrip("/")


def _get(path: str) -> Any:
    with urllib.request.urlopen(f"{query_url()}{path}", timeout=10) as response:
        return json.loads(response.read())


def trace_ids_of(job_ids: list[str]) -> set[str]:
    """Every trace holding a span tagged with one of these job ids, in any service."""
    found = set()
    for service in SERVICES:
        for job_id in job_ids:
            query = urllib.parse.urlencode({
                "service": service, "tags": json.dumps({"lorag.job_id": job_id}),
                "lookback": "2h", "limit": 50,
            })  # fmt: skip
            found |= {t["traceID"] for t in _get(f"/api/traces?{query}")["data"]}
    return found


def spans_of(trace_id: str) -> list[Span]:
    """The trace's spans, in start order."""
    (trace,) = _get(f"/api/traces/{trace_id}")["data"]
    services = {pid: p["serviceName"] for pid, p in trace["processes"].items()}
    spans = [
        Span(
            name=s["operationName"],
            service=services[s["processID"]],
            span_id=s["spanID"],
            parent_id=next(
                (r["spanID"] for r in s["references"] if r["refType"] == "CHILD_OF"), None
            ),
            start_us=s["startTime"],
            tags={t["key"]: t["value"] for t in s["tags"]},
        )
        for s in trace["spans"]
    ]
    return sorted(spans, key=lambda s: s.start_us)


def wait_for_spans(trace_id: str, want: set[str], timeout: float = 60) -> list[Span]:
    """The trace's spans once every span name in `want` arrived (exports are batched)."""
    deadline, spans = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        try:
            spans = spans_of(trace_id)
        except (OSError, ValueError):
            spans = []
        if want <= {s.name for s in spans}:
            return spans
        time.sleep(0.5)
    have = sorted({s.name for s in spans})
    raise AssertionError(f"trace {trace_id} lacks {sorted(want - set(have))}; it has {have}")


def ancestors(span: Span, by_id: dict[str, Span]) -> list[Span]:
    """The span's parents up to the root (those present in the trace)."""
    chain = []
    while span.parent_id and span.parent_id in by_id:
        span = by_id[span.parent_id]
        chain.append(span)
    return chain
