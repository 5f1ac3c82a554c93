"""The Kafka broker every process builds from its settings, and publishing events on it."""

from __future__ import annotations

import logging
from typing import Any

from faststream import BaseMiddleware, StreamMessage
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from lorag_core.contracts import Event
from lorag_core.settings import KafkaSettings

JSON_HEADERS = {"content-type": "application/json"}
PRODUCER_MAX_REQUEST_BYTES = 16 * 1024 * 1024  # dead letters carry whole oversized messages
# The links a span keeps (OTEL_SPAN_LINK_COUNT_LIMIT, 128 unless set; None: no limit): a batch's
# span links to the messages of no more than this many of its records.
BATCH_LINKS: int | None = SpanLimits().max_links
_ALL_HEADERS = "lorag_all_batch_headers"


class BoundBatchHeaders(BaseMiddleware):
    """Outside the telemetry middleware: it sees only a batch's first BATCH_LINKS headers.

    For a batch, FastStream's telemetry middleware extracts a trace context and baggage from
    every record's headers, to link the batch's span to each producer's span; the span keeps
    BATCH_LINKS links and drops the rest. On a batch of 2,000 progress records with the headers
    our services publish them with (traceparent, correlation_id), the broker's middlewares took
    26-46 ms a batch so, and 1.1-2.2 ms bounded (`python -m bench.profile_batch_links`, seven
    alternating rounds). Bounded, the span links to the first BATCH_LINKS records' producers.
    (Baggage: no lorag producer sets any; a batch's is now that of those records.)
    `RestoreBatchHeaders`, inside the telemetry middleware, hands the rest every header again.
    """

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        every = msg.batch_headers
        if BATCH_LINKS is None or len(every) <= BATCH_LINKS:
            return await call_next(msg)
        msg.batch_headers = every[:BATCH_LINKS]
        setattr(msg, _ALL_HEADERS, every)
        try:
            return await call_next(msg)
        finally:
            msg.batch_headers = every


class RestoreBatchHeaders(BaseMiddleware):
    """Inside the telemetry middleware: the middlewares and handler after it see every header."""

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        if (every := getattr(msg, _ALL_HEADERS, None)) is not None:
            msg.batch_headers = every
        return await call_next(msg)


def make_broker(
    settings: KafkaSettings,
    *,
    client_id: str,
    tracer_provider: TracerProvider | None = None,
    logger: logging.Logger | None = None,
    registry: CollectorRegistry | None = REGISTRY,
) -> KafkaBroker:
    """A broker that traces and counts every publish and consume, and waits for all replicas.

    Its message metrics (FastStream's faststream_* families) go to `registry`, the process's
    default one unless given (None: not counted); brokers of one process share the families.
    """
    middlewares: list[Any] = [
        BoundBatchHeaders,
        KafkaTelemetryMiddleware(tracer_provider=tracer_provider),
        RestoreBatchHeaders,
    ]
    if registry is not None:
        middlewares.append(KafkaPrometheusMiddleware(registry=registry, app_name=client_id))
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=client_id,
        acks="all",
        max_request_size=PRODUCER_MAX_REQUEST_BYTES,
        middlewares=middlewares,
        logger=logger or logging.getLogger(client_id),
        log_level=logging.DEBUG,
        graceful_timeout=30.0,
    )


async def publish_event(broker: KafkaBroker, event: Event, *, key: str | None = None) -> Any:
    """Publish an event on its topic, keyed by its job id unless a key is given."""
    key = key if key is not None else getattr(event, "job_id", None)
    return await broker.publish(
        event.to_bytes(),
        event.topic,
        key=key.encode() if key else None,
        headers=dict(JSON_HEADERS),
    )
