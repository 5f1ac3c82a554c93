"""Reading a whole topic, every partition up to the end it had when asked, for tests that count."""

from __future__ import annotations

import json
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


async def read_whole_topic(
    bootstrap: str, topic: str, *, timeout: float = 60
) -> list[dict[str, Any]]:
    """Every JSON object on the topic, partition by partition in offset order.

    Unlike reading until a first match, this sees a duplicate, so a test can count. Values that
    are not JSON objects (garbage other tests publish on purpose) are left out: they belong to no
    job.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,  # without a group, start() assigns every partition of the topic
        auto_offset_reset="earliest",  # and, with no committed offsets, starts at the beginning
        enable_auto_commit=False,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = sorted(consumer.assignment())
        if not partitions:
            raise AssertionError(f"topic {topic} has no partitions to read")
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        at = {tp: await consumer.position(tp) for tp in partitions}
        if at != starts:  # a reader that starts late reads nothing and would count no duplicate
            raise AssertionError(f"{topic}: reading from {at}, not from the beginning {starts}")
        read: dict[TopicPartition, list[Any]] = {tp: [] for tp in partitions}
        deadline = time.monotonic() + timeout
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic} not read to its end offsets {ends} in {timeout}s")
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                read[tp].extend(decoded(r.value) for r in records if r.offset < ends[tp])
        return [v for tp in partitions for v in read[tp] if v is not None]
    finally:
        await consumer.stop()


def decoded(value: bytes | None) -> dict[str, Any] | None:
    try:
        found = json.loads(value) if value is not None else None
    except ValueError:
        return None
    return found if isinstance(found, dict) else None
