"""A batch subscriber waits for records in its poll and never naps after an empty one: FastStream's
own consume loop, driven with a stand-in consumer."""

from collections import namedtuple

import pytest
from aiokafka.errors import ConsumerStoppedError

from lorag_core.messaging.batches import wait_in_poll
from lorag_core.messaging.delivery import Delivery
from lorag_core.service.host import ServiceHost
from lorag_core.settings import Settings

Record = namedtuple("Record", "topic partition offset")


class Consumer:
    """Answers getmany from a script of fetches; stops when the script ends."""

    def __init__(self, *fetches: dict) -> None:
        self.fetches, self.polls = list(fetches), []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        self.polls.append((timeout_ms, max_records))
        if not self.fetches:
            raise ConsumerStoppedError()
        return self.fetches.pop(0)


def progress_subscriber(monkeypatch, wait_ms: str):
    monkeypatch.setenv("LORAG_KAFKA_BATCH_WAIT_MS", wait_ms)
    host = ServiceHost("probe", Settings())
    delivery = Delivery(host.broker, "probe.group", max_message_bytes=1024, max_attempts=1)
    return host.at_least_once("job.progress", delivery, batch_size=10)


async def test_an_idle_batch_subscriber_polls_again_at_once(monkeypatch):
    """FastStream sleeps a batch subscriber's wait again after an empty poll, so a record that
    arrives meanwhile waits for the sleep; ours goes straight back into the next poll."""
    import faststream.kafka.subscriber.usecase as usecase

    subscriber = progress_subscriber(monkeypatch, "300")
    naps: list[float] = []

    async def nap(seconds: float) -> None:
        naps.append(seconds)

    monkeypatch.setattr(usecase.anyio, "sleep", nap)
    handled: list[tuple] = []

    async def consume_one(batch: tuple) -> None:
        handled.append(batch)

    monkeypatch.setattr(subscriber, "consume_one", consume_one)
    a, b, c = (Record("job.progress", p, o) for p, o in ((0, 7), (0, 8), (1, 3)))
    consumer = Consumer({}, {}, {"p0": [a, b], "p1": [c]}, {})
    subscriber.running = True
    await subscriber._run_consume_loop(consumer)
    assert naps == []
    assert consumer.polls == [(300, 10)] * 5
    assert handled == [(a, b, c)]  # every partition's records, in one batch


def test_only_batch_subscribers_are_made_to_wait(monkeypatch):
    host = ServiceHost("probe", Settings())
    delivery = Delivery(host.broker, "probe.group", max_message_bytes=1024, max_attempts=1)
    single = host.broker.subscriber("job.requested", group_id=delivery.consumer)
    with pytest.raises(TypeError, match="batch subscriber"):
        wait_in_poll(single)
