"""Batch subscribers that wait for records instead of napping between polls.

FastStream's batch subscriber asks its consumer for records with `getmany(timeout_ms=T)` and,
when that finds none, sleeps T before it asks again. A record arriving during the sleep waits
for it, so T had to stay short (20 ms), and an idle subscriber woke its event loop about 50 times
a second: an idle rag-service, which hosts the job tracker's progress subscriber, used 3.2% of a
core and made about 100 context switches a second, all of it polling
(`python -m bench.profile_idle`). `getmany` returns as soon as any record has been fetched, so
a subscriber that only waits in it can wait long: it takes records as promptly as before, and an
idle one wakes a couple of times a second.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from faststream.kafka.subscriber.usecase import BatchSubscriber


def wait_in_poll(subscriber: Any) -> Any:
    """Make a FastStream batch subscriber wait in `getmany` (its batch_timeout_ms) and never
    sleep after a poll that found nothing; returns the subscriber."""
    if not isinstance(subscriber, BatchSubscriber):
        raise TypeError(f"wait_in_poll takes a FastStream batch subscriber, not {subscriber!r}")

    async def get_msg(consumer: Any) -> tuple[Any, ...]:
        fetched = await consumer.getmany(
            timeout_ms=subscriber.batch_timeout_ms, max_records=subscriber.max_records
        )
        return tuple(chain.from_iterable(fetched.values()))  # empty: the loop polls again

    subscriber.get_msg = get_msg  # type: ignore[method-assign]  # this instance alone
    return subscriber
