"""Tracing and logging: one job is one trace across processes, and every log line says which.

Trace context travels in Kafka headers (W3C traceparent), injected and extracted by FastStream's
telemetry middleware on the broker, and across the Postgres work queue as a stored `traceparent`
(`current_traceparent` when a job is accepted, `continued` when a worker claims it). HTTP servers
(FastAPI), clients (httpx) and database calls (psycopg) are traced by the OpenTelemetry
instrumentation packages. Log lines carry the job id (a context variable set by `job_context`),
the current trace id and span id.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

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


_PROPAGATOR = TraceContextTextMapPropagator()
TRACER_NAME = "lorag"
OFF = "off"  # LORAG_OTEL_ENDPOINT=off: no export, even in the local profile


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """Client calls inside this block make no spans: bookkeeping (delivery attempt counts,
    session settings) that would fill a job's trace with rows nobody reads and cost each
    consumed record a span apiece. The block's own work stays inside the current span."""
    with suppress_instrumentation():
        yield


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


def current_span_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.span_id:016x}" if ctx.is_valid else None


def current_traceparent() -> str | None:
    """The current span as a W3C traceparent, to store beside work that another process resumes."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def continued(traceparent: str | None) -> otel_context.Context:
    """The context a stored traceparent names (empty, so a new trace, when there is none)."""
    if not traceparent:
        return otel_context.Context()
    return _PROPAGATOR.extract({"traceparent": traceparent})


def job_attributes(request: Any) -> dict[str, str]:
    """The span attributes that find a job's spans: its id, type, owner, parent."""
    attributes = {
        "lorag.job_id": request.job_id,
        "lorag.training_type": request.resolved.effective.value,
        "lorag.owner": request.owner or "",
    }
    if request.parent_job_id:
        attributes["lorag.parent_job_id"] = request.parent_job_id
    if request.stage:
        attributes["lorag.stage"] = request.stage
    return attributes


@contextlib.contextmanager
def stage_span(
    name: str, attributes: Mapping[str, Any] | None = None, *, parent: Any = None
) -> Iterator[trace.Span]:
    """One span around a stage of work (`name` like "rag.chunking"); add sizes as attributes.

    Attributes of the enclosing job span (job id, type, owner) are copied, so a search by job id
    finds every stage. Exceptions are recorded on the span and re-raised.
    """
    tracer = _tracer()
    inherited = _job_attributes.get() or {}
    with tracer.start_as_current_span(
        name, context=parent, attributes={**inherited, **(attributes or {})}
    ) as span:
        yield span


_job_attributes: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "lorag_job_attributes", default=None
)


@contextlib.contextmanager
def job_span(name: str, request: Any, *, traceparent: str | None, **extra: Any) -> Iterator[Any]:
    """The span of one job's run in this process, continuing the trace stored with its work."""
    attributes = job_attributes(request)
    token = _job_attributes.set(attributes)
    try:
        with stage_span(name, extra, parent=continued(traceparent)) as span:
            yield span
    finally:
        _job_attributes.reset(token)


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


_providers: list[TracerProvider] = []  # this process's own, whoever set the global one first


def _tracer() -> trace.Tracer:
    """lorag's tracer: from this process's provider (a library may have set the global one)."""
    return _providers[-1].get_tracer(TRACER_NAME) if _providers else trace.get_tracer(TRACER_NAME)


def setup_tracing(settings: TelemetrySettings, service: str) -> TracerProvider:
    """A tracer provider for this process: OTLP when an endpoint is set, JSONL when a path is.

    It becomes the global provider, and HTTP client and database calls are traced with it.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if settings.endpoint and settings.endpoint != OFF:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if settings.jsonl_path:
        provider.add_span_processor(SimpleSpanProcessor(JsonlSpanExporter(settings.jsonl_path)))
    trace.set_tracer_provider(provider)  # ignored if a library (chromadb) set one first
    _providers.append(provider)
    _instrument_clients(provider)
    return provider


_instrumented = threading.Lock()
_INSTRUMENTED: list[str] = []


def _instrument_clients(provider: TracerProvider) -> None:
    """httpx and psycopg calls become spans (once per process; later providers are ignored)."""
    with _instrumented:
        if _INSTRUMENTED:
            return
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        HTTPXClientInstrumentor().instrument(tracer_provider=provider)
        # No SQL comments: statements stay byte-identical, so Postgres' plan cache still hits.
        PsycopgInstrumentor().instrument(
            tracer_provider=provider, enable_commenter=False, skip_dep_check=True
        )
        _INSTRUMENTED.append("httpx, psycopg")


def instrument_app(app: Any) -> None:
    """Server spans for a FastAPI app (health, readiness and metrics probes left out)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # No receive/send sub-spans: a streamed answer would make one per chunk.
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=_providers[-1] if _providers else None,
        excluded_urls="/health,/ready,/metrics", exclude_spans=["receive", "send"],
    )  # fmt: skip


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = _job_id.get() or "-"
        record.trace_id = current_trace_id() or "-"
        record.span_id = current_span_id() or "-"
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "job_id": getattr(record, "job_id", "-"),
            "trace_id": getattr(record, "trace_id", "-"),
            "span_id": getattr(record, "span_id", "-"),
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
