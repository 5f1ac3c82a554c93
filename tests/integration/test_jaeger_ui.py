"""Issue 12: the local Jaeger serves the real Jaeger UI (third_party/jaeger-ui) on its query
port, not the placeholder page of Jaeger's Go module, and that UI renders a trace in chromium."""

from __future__ import annotations

import re
import urllib.request
import uuid

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from playwright import sync_api as playwright

from tests.support.browser import ARGS, chromium
from tests.support.jaeger import wait_for_spans

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def export_trace(otlp_url: str, service: str) -> str:
    """Send a two-span trace of `service` to Jaeger over OTLP/HTTP; return its trace id."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{otlp_url}/v1/traces")))
    tracer = provider.get_tracer("tests.jaeger_ui")
    with (
        tracer.start_as_current_span("ui-check.parent") as parent,
        tracer.start_as_current_span("ui-check.child"),
    ):
        pass
    provider.shutdown()
    return format(parent.get_span_context().trace_id, "032x")


def test_the_query_port_serves_the_real_jaeger_ui(endpoints):
    status, content_type, body = get(f"{endpoints.trace_ui_url}/")
    html = body.decode()
    assert status == 200 and content_type.startswith("text/html")
    assert "not the Jaeger UI you are looking for" not in html, "Jaeger serves its placeholder"
    assert "<title>Jaeger UI</title>" in html and '<div id="jaeger-ui-root">' in html
    entry = re.search(r'<script type="module" crossorigin src="\./(static/index-[\w-]+\.js)"', html)
    assert entry, "index.html names no module entry script"
    status, content_type, script = get(f"{endpoints.trace_ui_url}/{entry.group(1)}")
    assert status == 200 and "javascript" in content_type
    assert len(script) > 1_000_000  # the whole React app, not an error page


def test_the_ui_renders_an_exported_trace_with_its_service(endpoints, tmp_path):
    executable = chromium()  # fail before exporting when there is no browser
    service = f"ui-check-{uuid.uuid4().hex[:8]}"
    trace_id = export_trace(endpoints.otlp_endpoint, service)
    wait_for_spans(trace_id, {"ui-check.parent", "ui-check.child"})
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(90_000)  # a loaded 2-core machine answers slowly
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{endpoints.trace_ui_url}/trace/{trace_id}")
            # The trace page's header names the root span as "<service>: <operation>".
            page.get_by_text(f"{service}: ui-check.parent").first.wait_for(state="visible")
            page.get_by_text("ui-check.child").first.wait_for(state="visible")
            assert page.get_by_text(service).count() >= 2  # the header and the span rows
            assert trace_id[:7] in page.content()  # the header shows the short trace id
            page.screenshot(path=tmp_path / "jaeger-trace.png", full_page=True)
        finally:
            browser.close()
    assert not errors, f"script errors on the trace page: {errors}"
