"""Tracing and logging: one job is one trace across processes, and every log line says which.

Trace context travels in Kafka headers (W3C traceparent), injected and extracted by FastStream's
telemetry middleware on the broker. Log lines carry the job id (a context variable set by
`job_context`) and the current trace id.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from lorag_core.settings import TelemetrySettings

_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("lorag_job_id", default=None)


@contextlib.contextmanager
def job_context(job_id: str | None) -> Iterator[None]:
    """Log lines inside this block carry the job id."""
    token = _job_id.set(job_id)
    try:
        yield
    finally:
        _job_id.reset(token)


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


class JsonlSpanExporter(SpanExporter):
    """Finished spans as JSON lines in a file: for debugging without a collector, and for tests."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            for span in spans:
                ctx, parent = span.get_span_context(), span.parent
                if ctx is None:
                    continue
                self._file.write(
                    json.dumps(
                        {
                            "name": span.name,
                            "trace_id": f"{ctx.trace_id:032x}",
                            "span_id": f"{ctx.span_id:016x}",
                            "parent_span_id": f"{parent.span_id:016x}" if parent else None,
                            "kind": span.kind.name,
                            "service": span.resource.attributes.get("service.name"),
                            "attributes": {k: str(v) for k, v in (span.attributes or {}).items()},
                        }
                    )
                    + "\n"
                )
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._file.close()


def setup_tracing(settings: TelemetrySettings, service: str) -> TracerProvider:
    """A tracer provider for this process: OTLP when an endpoint is set, JSONL when a path is."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if settings.endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if settings.jsonl_path:
        provider.add_span_processor(SimpleSpanProcessor(JsonlSpanExporter(settings.jsonl_path)))
    trace.set_tracer_provider(provider)
    return provider


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = _job_id.get() or "-"
        record.trace_id = current_trace_id() or "-"
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "job_id": getattr(record, "job_id", "-"),
            "trace_id": getattr(record, "trace_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(settings: TelemetrySettings, service: str) -> None:
    """Log to stderr, each line with the service, job id and trace id."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    if settings.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s %(levelname)-5s {service} job=%(job_id)s trace=%(trace_id)s "
                "%(name)s: %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
