"""A batch's trace span links to at most the links a span keeps, and the handler still sees every
record's headers: the broker's own middleware chain, driven in its order, on a hand-made batch."""

import uuid
from collections import namedtuple
from typing import Any

import pytest
from faststream import StreamMessage
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lorag_core.messaging.broker import BATCH_LINKS, make_broker
from lorag_core.settings import KafkaSettings
from tests.support.middlewares import through_middlewares

Record = namedtuple("Record", "topic partition offset")


def producer_headers() -> dict[str, str]:
    """What our publishers attach: a traceparent of the producer's span and a correlation id."""
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return {
        "content-type": "application/json",
        "correlation_id": str(uuid.uuid4()),
        "traceparent": f"00-{trace_id}-{span_id}-01",
    }


def batch(n: int) -> StreamMessage[Any]:
    headers = [producer_headers() for _ in range(n)]
    records = tuple(Record("job.progress", 0, i) for i in range(n))
    return StreamMessage(records, [b"{}"] * n, headers=headers[0], batch_headers=headers)


async def consume(n: int) -> tuple[list[int], list[Any], StreamMessage[Any], list[dict[str, str]]]:
    """Run a batch of n through the broker's middlewares; what the handler saw, the spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    broker = make_broker(KafkaSettings(), client_id="links-test", tracer_provider=provider,
                         registry=None)  # fmt: skip
    msg = batch(n)
    sent = list(msg.batch_headers)
    seen: list[int] = []

    async def handler(m: StreamMessage[Any]) -> None:
        seen.append(len(m.batch_headers))
        assert m.batch_headers == sent

    await through_middlewares(broker.middlewares, broker.context, msg, handler)
    return seen, list(exporter.get_finished_spans()), msg, sent


@pytest.mark.parametrize("n", [1, 5, 2000])
async def test_the_handler_sees_every_records_headers(n):
    seen, _, msg, sent = await consume(n)
    assert seen == [n]
    assert msg.batch_headers == sent  # and so does anything after the scope


async def test_a_large_batchs_span_links_to_the_first_records_producers_only():
    _, spans, _, sent = await consume(2000)
    (created,) = [s for s in spans if s.name.endswith("create")]  # FastStream links it
    linked = [f"{link.context.span_id:016x}" for link in created.links]
    first = [h["traceparent"].split("-")[2] for h in sent[:BATCH_LINKS]]
    assert BATCH_LINKS is not None and BATCH_LINKS < 2000
    assert linked == first
    assert created.attributes["messaging.batch.message_count"] == 2000


async def test_a_small_batch_links_every_records_producer():
    _, spans, _, sent = await consume(5)
    (created,) = [s for s in spans if s.name.endswith("create")]  # FastStream links it
    assert [f"{link.context.span_id:016x}" for link in created.links] == [
        h["traceparent"].split("-")[2] for h in sent
    ]
