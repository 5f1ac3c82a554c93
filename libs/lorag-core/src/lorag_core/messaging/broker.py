"""The Kafka broker every process builds from its settings, and publishing events on it."""

from __future__ import annotations

import logging
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from lorag_core.contracts import Event
from lorag_core.settings import KafkaSettings

JSON_HEADERS = {"content-type": "application/json"}
PRODUCER_MAX_REQUEST_BYTES = 16 * 1024 * 1024  # dead letters carry whole oversized messages


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
    middlewares: list[Any] = [KafkaTelemetryMiddleware(tracer_provider=tracer_provider)]
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
