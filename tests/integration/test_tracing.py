"""One job is one trace: the consumer process continues the trace the publisher started."""

import json
import time
import uuid

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lorag_core.contracts import JobRequested
from lorag_core.messaging.broker import make_broker, publish_event
from tests.support.db import wait_for_job

pytestmark = pytest.mark.integration


async def test_consumer_process_continues_the_publishers_trace(settings, tracker):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    broker = make_broker(settings.kafka, client_id="trace-test", tracer_provider=provider)
    job_id = f"job-trace-{uuid.uuid4().hex[:10]}"
    async with broker:
        await publish_event(
            broker,
            JobRequested(
                job_id=job_id, training_type="EXTERNAL_RAG", datasets=[{"uri": "s3://b/k"}]
            ),
        )
    # FastStream's producer side: a "create" span whose context travels in the traceparent
    # header, and a "publish" span for the send itself.
    created = [s for s in exporter.get_finished_spans() if s.name.endswith("create")]
    assert len(created) == 1
    trace_id = f"{created[0].context.trace_id:032x}"
    create_span_id = f"{created[0].context.span_id:016x}"

    job = await wait_for_job(settings.postgres_dsn, job_id)
    assert job["trace_id"] == trace_id  # the job row points at its trace

    deadline, consumed = time.monotonic() + 10, []
    while time.monotonic() < deadline and not consumed:
        spans = [json.loads(line) for line in tracker.spans_path.read_text().splitlines()]
        consumed = [
            s
            for s in spans
            if s["trace_id"] == trace_id
            and s["kind"] == "CONSUMER"
            and s["name"].endswith("process")
        ]
        time.sleep(0.1)
    assert consumed, "the consumer process exported no span in the publisher's trace"
    assert consumed[0]["parent_span_id"] == create_span_id
    assert consumed[0]["service"] == "migration-service"
