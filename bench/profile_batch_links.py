"""What the broker's middlewares cost a batch of 2,000 progress records, with and without
`BoundBatchHeaders` (the first 128 records' headers for the telemetry middleware, not every one).

`python -m bench.profile_batch_links`: the records carry the headers our services' progress
events carry (`bench.events.producer_headers`); the middleware chain `make_broker` builds runs
around a handler that does nothing, in alternating rounds; the median milliseconds a batch of
each. In process, no Kafka. A profile, not a judged figure (`bench events` judges the tracker).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import namedtuple
from typing import Any

from faststream import StreamMessage
from opentelemetry.sdk.trace import TracerProvider

from bench.events import producer_headers
from lorag_core.messaging.broker import BoundBatchHeaders, RestoreBatchHeaders, make_broker
from lorag_core.settings import KafkaSettings
from tests.support.middlewares import through_middlewares

RECORDS, ROUNDS, BATCHES = 2000, 7, 20
Record = namedtuple("Record", "topic partition offset")


def batch() -> StreamMessage[Any]:
    traces: dict[str, str] = {}
    headers = [
        {k: v.decode() for k, v in producer_headers(traces, f"job-{i // 10}")}
        for i in range(RECORDS)
    ]
    records = tuple(Record("job.progress", 0, i) for i in range(RECORDS))
    return StreamMessage(records, [b"{}"] * RECORDS, headers=headers[0], batch_headers=headers)


async def nothing(m: StreamMessage[Any]) -> None:
    return None


async def main() -> None:
    broker = make_broker(KafkaSettings(), client_id="profile-links",
                         tracer_provider=TracerProvider(), registry=None)  # fmt: skip
    bounded = list(broker.middlewares)
    unbounded = [m for m in bounded if m not in (BoundBatchHeaders, RestoreBatchHeaders)]
    msg = batch()
    timings: dict[str, list[float]] = {"bounded (as make_broker builds it)": [], "unbounded": []}
    for _ in range(ROUNDS):
        for label, chain in zip(timings, (bounded, unbounded), strict=True):
            started = time.perf_counter()
            for _ in range(BATCHES):
                await through_middlewares(chain, broker.context, msg, nothing)
            timings[label].append((time.perf_counter() - started) / BATCHES * 1000)
    for label, ms in timings.items():
        print(f"{label:<36} median {statistics.median(ms):6.2f} ms a batch of {RECORDS} "
              f"(rounds {' / '.join(f'{m:.2f}' for m in ms)})")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
