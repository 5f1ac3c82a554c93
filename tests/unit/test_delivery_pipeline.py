"""The tracker's pipelined batches keep at-least-once: a batch is handled after its predecessor,
its offsets are committed only once it was handled and in order, and a failure rewinds the
consumer to the failed batch (dropping the one fetched meanwhile) without committing past it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from lorag_core.contracts import JobProgress
from lorag_core.messaging.delivery import Delivery, Rejected

TOPIC = "job.progress"


@dataclass
class FakeConsumer:
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))


@dataclass
class FakeMessage:
    raw_message: tuple[ConsumerRecord, ...]
    consumer: FakeConsumer


def batch(consumer: FakeConsumer, *offsets: tuple[int, int]) -> FakeMessage:
    """A batch of progress records at (partition, offset), one job per record."""
    records = tuple(
        ConsumerRecord(TOPIC, p, o, 0, 0, None, JobProgress(
            job_id=f"j-{p}-{o}", seq=1, state="RUNNING", producer="test"
        ).to_bytes(), None, 0, 0, ())
        for p, o in offsets
    )  # fmt: skip
    return FakeMessage(records, consumer)


def delivery() -> Delivery:
    return Delivery(
        broker=None,  # type: ignore[arg-type]
        consumer="test.group",
        max_message_bytes=10_000,
        max_attempts=5,
        retry_delay_s=0,
    )


async def test_batches_are_handled_in_order_and_committed_after_they_were_handled() -> None:
    consumer, handled, order = FakeConsumer(), [], []
    release_first = asyncio.Event()

    async def handler(events: list[JobProgress]) -> None:
        ids = [e.job_id for e in events]
        order.append(("start", ids))
        if ids == ["j-0-0", "j-1-0"]:
            await release_first.wait()  # Postgres is slow on the first batch
        handled.append(ids)

    pipeline = delivery()
    await pipeline.pipelined_batch(batch(consumer, (0, 0), (1, 0)), JobProgress, handler)
    await asyncio.sleep(0)
    assert consumer.commits == [], "nothing is committed before its batch was handled"
    second = asyncio.create_task(
        pipeline.pipelined_batch(batch(consumer, (0, 1), (0, 2)), JobProgress, handler)
    )
    await asyncio.sleep(0.01)
    assert not second.done(), "the next batch waits (decoded) for its predecessor"
    assert order == [("start", ["j-0-0", "j-1-0"])]
    release_first.set()
    await second
    await pipeline.drain()
    assert handled == [["j-0-0", "j-1-0"], ["j-0-1", "j-0-2"]]
    assert consumer.commits == [
        {TopicPartition(TOPIC, 0): 1, TopicPartition(TOPIC, 1): 1},
        {TopicPartition(TOPIC, 0): 3},
    ]
    assert consumer.seeks == []


async def test_a_failed_batch_rewinds_and_the_one_fetched_meanwhile_comes_again() -> None:
    consumer, tries = FakeConsumer(), []

    async def handler(events: list[JobProgress]) -> None:
        tries.append([e.job_id for e in events])
        if len(tries) == 1:
            raise RuntimeError("Postgres went away")

    pipeline = delivery()
    await pipeline.pipelined_batch(batch(consumer, (0, 5), (0, 6)), JobProgress, handler)
    # Fetched while the first was failing: partition 0 after it, and partition 2 it never held.
    await pipeline.pipelined_batch(batch(consumer, (0, 7), (2, 3)), JobProgress, handler)
    await pipeline.drain()
    assert tries == [["j-0-5", "j-0-6"]], "the batch after a failed one is not handled"
    assert consumer.commits == [], "nothing is committed past the failed batch"
    rewound: dict[TopicPartition, int] = {}
    for tp, offset in consumer.seeks:
        rewound[tp] = offset
    assert rewound == {TopicPartition(TOPIC, 0): 5, TopicPartition(TOPIC, 2): 3}


async def test_while_draining_a_batch_is_handled_and_committed_before_its_handler_returns() -> None:
    consumer, handled = FakeConsumer(), []

    async def handler(events: list[JobProgress]) -> None:
        await asyncio.sleep(0.01)
        handled.append(len(events))

    pipeline = delivery()
    await pipeline.drain()
    await pipeline.pipelined_batch(batch(consumer, (1, 4)), JobProgress, handler)
    assert handled == [1] and consumer.commits == [{TopicPartition(TOPIC, 1): 5}]


async def test_a_batch_stuck_past_the_drain_timeout_is_abandoned_uncommitted() -> None:
    consumer = FakeConsumer()

    async def stuck(events: list[JobProgress]) -> None:
        await asyncio.sleep(3600)  # a transaction held open (frozen, or the fault injection)

    pipeline = delivery()
    await pipeline.pipelined_batch(batch(consumer, (0, 9)), JobProgress, stuck)
    waiting = asyncio.create_task(
        pipeline.pipelined_batch(batch(consumer, (0, 10)), JobProgress, stuck)
    )
    await asyncio.sleep(0.01)
    await pipeline.drain(timeout_s=0.05)
    await asyncio.wait_for(waiting, 1)  # the next batch's handler returns too: the process stops
    assert consumer.commits == []
    assert (TopicPartition(TOPIC, 0), 9) in consumer.seeks


async def test_a_batch_is_prepared_while_its_predecessor_is_handled_then_its_work_runs() -> None:
    consumer, prepared, handled = FakeConsumer(), [], []
    release_first = asyncio.Event()

    async def handler(events: list[JobProgress]) -> None:
        handled.append(("handler", [e.job_id for e in events]))

    async def prepare(events: list[JobProgress]) -> Callable[[], Awaitable[None]]:
        ids = [e.job_id for e in events]
        prepared.append(ids)

        async def work() -> None:
            if ids == ["j-0-0"]:
                await release_first.wait()  # Postgres is slow on the first batch
            handled.append(("prepared", ids))

        return work

    pipeline = delivery()
    await pipeline.pipelined_batch(batch(consumer, (0, 0)), JobProgress, handler, prepare)
    second = asyncio.create_task(
        pipeline.pipelined_batch(batch(consumer, (0, 1), (1, 0)), JobProgress, handler, prepare)
    )
    await asyncio.sleep(0.01)
    assert prepared == [["j-0-0"], ["j-0-1", "j-1-0"]], "prepared before its predecessor ended"
    assert handled == [] and not second.done()
    release_first.set()
    await second
    await pipeline.drain()
    assert handled == [("prepared", ["j-0-0"]), ("prepared", ["j-0-1", "j-1-0"])]
    assert consumer.commits[-1] == {TopicPartition(TOPIC, 0): 2, TopicPartition(TOPIC, 1): 1}


async def test_a_prepared_batch_a_record_poisons_goes_to_the_handler_record_by_record() -> None:
    consumer, handled = FakeConsumer(), []

    async def handler(events: list[JobProgress]) -> None:
        handled.append([e.job_id for e in events])

    async def prepare(events: list[JobProgress]) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            raise Rejected("INVALID_CONTRACT", "one of these poisons the batch")

        return work

    pipeline = delivery()
    await pipeline.pipelined_batch(batch(consumer, (0, 3), (0, 4)), JobProgress, handler, prepare)
    await pipeline.drain()
    assert handled == [["j-0-3"], ["j-0-4"]]
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 5}]


async def test_a_batch_whose_preparation_fails_comes_again() -> None:
    consumer = FakeConsumer()

    async def handler(events: list[JobProgress]) -> None:
        raise AssertionError("not handled: its preparation failed")

    async def prepare(events: list[JobProgress]) -> Callable[[], Awaitable[None]]:
        raise RuntimeError("a bug")

    pipeline = delivery()
    with pytest.raises(RuntimeError):
        await pipeline.pipelined_batch(batch(consumer, (1, 8)), JobProgress, handler, prepare)
    await pipeline.drain()
    assert consumer.commits == [] and consumer.seeks == [(TopicPartition(TOPIC, 1), 8)]


async def test_the_batch_being_handled_goes_on_between_slices_of_the_next_ones_decode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch's handling is statements in a row, each waiting for the thread: the next batch's
    decode lets it go on after every DECODE_SLICE records, not only after the whole batch."""
    from lorag_core.messaging import delivery as module

    consumer, log = FakeConsumer(), []
    real_decode = module.decode

    def decode(record: ConsumerRecord, *args: object) -> object:
        log.append("decoded")
        return real_decode(record, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "decode", decode)

    async def handler(events: list[JobProgress]) -> None:
        if len(events) == 1:  # the first batch: one statement after another
            for _ in range(8):
                await asyncio.sleep(0)
                log.append("statement")

    pipeline = delivery()
    await pipeline.pipelined_batch(batch(consumer, (0, 0)), JobProgress, handler)
    log.clear()
    size = 5 * module.DECODE_SLICE
    big = batch(consumer, *[(0, o) for o in range(1, size + 1)])
    await pipeline.pipelined_batch(big, JobProgress, handler)
    await pipeline.drain()
    assert log.count("decoded") == size and log.count("statement") == 8
    runs, run = [], 0  # records decoded between two statements of the batch handled meanwhile
    for entry in log[: max(i for i, e in enumerate(log) if e == "statement")]:
        if entry == "decoded":
            run += 1
        else:
            runs.append(run)
            run = 0
    assert max(runs) <= module.DECODE_SLICE and sum(runs) > 0, runs
