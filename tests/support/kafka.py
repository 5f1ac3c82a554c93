"""Publishing raw bytes and reading topics back, for tests that look at the wire itself."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def publish_raw(
    bootstrap: str,
    topic: str,
    *values: bytes,
    key: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=16 * 1024 * 1024)
    await producer.start()
    kafka_headers = [(k, v.encode()) for k, v in (headers or {}).items()] or None
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key, headers=kafka_headers)
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str, topic: str, *, until: Any, timeout: float = 30
) -> list[dict[str, Any]]:
    """Read a JSON topic from the start until `until(messages)` is true or the time is up."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(seen):
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                seen.extend(json.loads(r.value) for r in records)
        await asyncio.sleep(0)
        return seen
    finally:
        await consumer.stop()
