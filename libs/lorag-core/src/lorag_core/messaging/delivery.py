"""At-least-once delivery for one consumer group, with a dead-letter topic per input topic.

Subscribers use `AckPolicy.NACK_ON_ERROR`: the offset is committed only after the handler
returned, that is after its effects were committed. A message that can never be handled
(not JSON, not the contract, too large, failing `max_attempts` times, or killing its consumer
that many times) is published whole to `<topic>.dlq` with the reason, once however many
consumer groups refuse it, and the consumer goes on with the next one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError
from faststream.kafka import KafkaBroker
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from lorag_core.contracts import DeadLettered, Event, JobRequested, dead_letter_topic
from lorag_core.contracts.base import STORABLE_CHECKED, storable_json, unstorable
from lorag_core.contracts.legacy import is_legacy_request
from lorag_core.db import dead_letters
from lorag_core.db.dead_letters import RecordKey
from lorag_core.metrics import DEAD_LETTERS
from lorag_core.telemetry import untraced

E = TypeVar("E", bound=Event)
log = logging.getLogger(__name__)
# How long a stopping process waits for a batch in the background (a fold takes well under a
# second; the broker's own graceful timeout for handlers is 30 s, and it runs after this).
DRAIN_TIMEOUT_S = 10.0
# Records a pipelined batch decodes between turns of the event loop (about half a millisecond
# of CPU in the tracker): the batch handled meanwhile sends each next statement to Postgres that
# much after the last one returned, and a batch's handling is eight or so statements in a row,
# the critical path of a busy tracker (a timeline of its batches of 4,000: about 95 ms decoding
# and folding ahead, then about 66 ms waiting for the one before, handled in about 160 ms).
# Ad-hoc alternating A/B of the tracker on bench events' 100,000 events, 4 rounds each: slices of
# 50 records projected a median 30,618 events/s against 25,501 for 200 (ahead in all 4 rounds),
# and slices of 20 a median 36,430 against 32,765 for 50 (2 rounds each way; steadier).
DECODE_SLICE = 20


_CHECKED = MappingProxyType({STORABLE_CHECKED: True})  # the validation context of storable JSON


class NotForUs(Exception):
    """A message another consumer group handles (a legacy request): acknowledge and skip it."""


class Rejected(Exception):
    """A message that will never be handled, whatever the number of tries."""

    def __init__(self, code: str, reason: str, attempts: int = 1) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.attempts = attempts


async def raw_body(message: Any) -> Any:
    """A FastStream decoder that leaves bytes alone: decoding errors are ours to dead-letter."""
    return message.body


def decode(record: ConsumerRecord, event_type: type[E], max_bytes: int) -> E:
    """Bytes -> contract, or Rejected with a code that says which rule the message broke."""
    raw: bytes = record.value or b""
    if len(raw) > max_bytes:
        raise Rejected("TOO_LARGE", f"{len(raw)} bytes is over the limit of {max_bytes}")
    # The fast path: pydantic parses the JSON itself, and text that cannot hold a NUL or a lone
    # surrogate is not walked for them again (half the cost of decoding a progress event).
    try:
        return event_type.model_validate_json(raw, context=_CHECKED if storable_json(raw) else None)
    except ValidationError:
        pass  # find out why, below, to give the dead letter a precise code
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected("NOT_JSON", f"payload is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Rejected(
            "INVALID_CONTRACT", f"payload is a JSON {type(data).__name__}, not an object"
        )
    if event_type is JobRequested and is_legacy_request(data):
        raise NotForUs("a legacy request: the migration-service normalises it")
    version = data.get("schema_version", 1)
    if version != 1:
        raise Rejected(
            "UNKNOWN_SCHEMA_VERSION", f"schema_version {version!r} is not supported (1 is)"
        )
    # First, and for the whole payload: field errors name their location, and a location that
    # holds a NUL (a dict key) would put it into the dead letter's reason, which refuses it.
    if (found := unstorable(data)) is not None:
        raise Rejected("INVALID_CONTRACT", f"<root>: text may not contain {found}")
    try:
        return event_type.model_validate(data, context={STORABLE_CHECKED: True})  # just checked
    except ValidationError as exc:
        raise Rejected("INVALID_CONTRACT", _short(exc)) from None


class Delivery:
    """Decode, handle and acknowledge-or-retry the messages of one consumer group.

    With a Postgres pool (every service has one), each start of handling is counted in
    `delivery_attempts` before the handler runs, so the count survives the process: a record
    that kills its consumer every time is dead-lettered (CONSUMER_CRASHED) at the start after
    its `max_attempts`-th. A batch is counted by its first record of each partition
    (`counted_keys`): a row per partition, not per record. Dead letters are claimed in
    `dead_letters`, so a record refused by several consumer groups is published to
    `<topic>.dlq` once. Without a pool (unit tests), attempts are counted in memory and every
    refusal is published.
    """

    def __init__(
        self,
        broker: KafkaBroker,
        consumer: str,
        *,
        max_message_bytes: int,
        max_attempts: int,
        retry_delay_s: float = 0.5,
        pool: Callable[[], AsyncConnectionPool] | None = None,
    ) -> None:
        self.broker = broker
        self.consumer = consumer
        self.max_message_bytes = max_message_bytes
        self.max_attempts = max_attempts
        self.retry_delay_s = retry_delay_s
        self._pool = pool
        self._attempts: dict[tuple[str, RecordKey], int] = {}
        # Fault injection for crash tests: hold after the effects commit, before the ack; die
        # (as if SIGKILLed) on every record whose payload contains the marker.
        self._hold_before_ack_s = float(os.environ.get("LORAG_FAULT_HOLD_BEFORE_ACK_S", "0"))
        self._crash_on = os.environ.get("LORAG_FAULT_CRASH_ON", "").encode()
        self._in_flight: _Flight | None = None  # pipelined_batch's batch in the background
        self._committing: asyncio.Task[None] | None = None  # and the commit of its offsets
        self._draining = False

    @property
    def _single(self) -> str:
        """The counter of a record handled alone after its batch kept failing."""
        return f"{self.consumer}#single"

    async def one(
        self, record: ConsumerRecord, event_type: type[E], handler: Callable[[E], Awaitable[None]]
    ) -> None:
        """Handle one record; raise to have it redelivered, return to have it acknowledged."""
        try:
            event = decode(record, event_type, self.max_message_bytes)
            await self._attempt([record], lambda: handler(event), self.consumer)
        except Rejected as rejected:
            await self.dead_letter(record, rejected.code, rejected.reason, rejected.attempts)
        except NotForUs as skipped:
            log.debug("%s: skipped %s@%d: %s", self.consumer, record.topic, record.offset, skipped)

    async def batch(
        self,
        records: Sequence[ConsumerRecord],
        event_type: type[E],
        handler: Callable[[list[E]], Awaitable[None]],
    ) -> None:
        """Handle a batch in one go; bad records are dead-lettered, the rest handled together."""
        await self._handle_decoded(self._decode_all(records, event_type), handler)

    async def pipelined_batch(
        self,
        message: Any,
        event_type: type[E],
        handler: Callable[[list[E]], Awaitable[None]],
        prepare: Callable[[list[E]], Awaitable[Callable[[], Awaitable[None]]]] | None = None,
    ) -> None:
        """Like `batch`, for a subscriber with manual acks (`at_least_once(..., pipelined=True)`):
        a pipeline of depth two, so Kafka and decoding do not wait for Postgres.

        The batch is decoded while its predecessor is still being handled, then handled in the
        background while the consumer fetches and decodes the next one. A batch is handled only
        after its predecessor was, and its offsets are committed only after it was handled and
        its predecessor's offsets were committed, so a crash redelivers, never loses. A batch
        that fails rewinds the consumer to its first records, as a nack does; the batch fetched
        meanwhile is dropped and comes again after it.

        `prepare`, when given, gets each batch's events as soon as they are decoded, so it too
        runs while Postgres handles the predecessor (a coroutine, it too should let the event
        loop run now and then, as the decode does); it returns the work that handles them in
        place of `handler(events)` (a batch handled record by record, to find a poisoned one,
        goes to `handler`).
        """
        records = records_of(message)
        try:
            # CPU, while Postgres handles the predecessor: in slices, so that between them the
            # predecessor's handling sends its next statement as soon as the last one returns.
            decoded = await self._decode_yielding(records, event_type)
            if prepare is not None and decoded.good:
                await asyncio.sleep(0)
                decoded.work = await prepare([e for _, e in decoded.good])
        except BaseException:  # a bug, not a bad record: as a nack, the batch comes again
            _rewind(message.consumer, records)
            raise
        previous, self._in_flight = self._in_flight, None
        if previous is not None and not await previous.handled():
            # Fetched before the failed batch was rewound (or from where it was rewound to):
            # either way, everything from the failed batch's first records on comes again.
            _rewind(message.consumer, [*previous.records, *records])
            return
        handling = asyncio.create_task(
            self._handle_or_rewind(message.consumer, records, decoded, handler)
        )
        committing = asyncio.create_task(
            _commit_after(handling, self._committing, message.consumer, records, self.consumer)
        )
        self._in_flight, self._committing = _Flight(records, handling), committing
        if self._draining:  # stopping: nothing may be left in the background
            await self.drain()

    async def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Finish the batch handled in the background, if any, and its commit; from now on
        handle batches inline (the process is stopping: its consumers close next). A batch not
        finished within `timeout_s` is abandoned, uncommitted: it comes again."""
        self._draining = True
        flight, self._in_flight = self._in_flight, None
        tasks = [t for t in (flight.task if flight else None, self._committing) if t is not None]
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            log.warning("%s: a batch still in hand after %.0fs of stopping is abandoned "
                        "(not committed: it comes again)", self.consumer, timeout_s)  # fmt: skip
            task.cancel()
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: a failure was logged where it happened

    async def _handle_or_rewind(
        self,
        consumer: Any,
        records: Sequence[ConsumerRecord],
        decoded: _Decoded[E],
        handler: Callable[[list[E]], Awaitable[None]],
    ) -> None:
        try:
            await self._handle_decoded(decoded, handler)
        except BaseException as exc:
            log.warning("%s: batch of %d not handled (%r); it comes again",
                        self.consumer, len(records), exc)  # fmt: skip
            _rewind(consumer, records)  # as a nack: the batch comes again
            raise

    def _decode_all(self, records: Sequence[ConsumerRecord], event_type: type[E]) -> _Decoded[E]:
        decoded = _Decoded[E]()
        self._decode_into(decoded, records, event_type)
        return decoded

    async def _decode_yielding(
        self, records: Sequence[ConsumerRecord], event_type: type[E]
    ) -> _Decoded[E]:
        """`_decode_all`, a slice at a time, letting the event loop run between slices."""
        decoded = _Decoded[E]()
        for start in range(0, len(records), DECODE_SLICE):
            await asyncio.sleep(0)
            self._decode_into(decoded, records[start : start + DECODE_SLICE], event_type)
        return decoded

    def _decode_into(
        self, decoded: _Decoded[E], records: Sequence[ConsumerRecord], event_type: type[E]
    ) -> None:
        for record in records:
            try:
                decoded.good.append((record, decode(record, event_type, self.max_message_bytes)))
            except Rejected as rejected:
                decoded.refused.append((record, rejected))
            except NotForUs:
                pass

    async def _handle_decoded(
        self, decoded: _Decoded[E], handler: Callable[[list[E]], Awaitable[None]]
    ) -> None:
        for record, rejected in decoded.refused:
            await self.dead_letter(record, rejected.code, rejected.reason)
        good = decoded.good
        if not good:
            return
        try:
            events = [e for _, e in good]
            work = decoded.work or (lambda: handler(events))
            await self._attempt([r for r, _ in good], work, self.consumer)
        except Rejected:
            # Some record poisons the batch: handle them one by one (each with its own count)
            # to find which; the others are handled again, which idempotent handlers allow.
            for record, event in good:
                try:
                    await self._attempt([record], partial(handler, [event]), self._single)
                except Rejected as rejected:
                    await self.dead_letter(
                        record, rejected.code, rejected.reason, rejected.attempts
                    )
            await self._forget(counted_keys([r for r, _ in good]), self.consumer)

    async def _attempt(
        self,
        records: Sequence[ConsumerRecord],
        work: Callable[[], Awaitable[None]],
        counter: str,
    ) -> None:
        keys = counted_keys(records)
        started = await self._begin(keys, counter)
        if started > self.max_attempts:
            raise Rejected(
                "CONSUMER_CRASHED",
                f"handling started {started - 1} times and never finished: the consumer "
                "died or hung each time (killed, out of memory, or a crash)",
                started - 1,
            )
        if self._crash_on and any(self._crash_on in (r.value or b"") for r in records):
            log.error("%s: dying on a marked record (fault injection)", self.consumer)
            os._exit(137)
        try:
            await work()
        except Rejected:
            raise
        except Exception as exc:
            if started >= self.max_attempts:
                raise Rejected(
                    "HANDLER_FAILED", f"failed {started} times, last: {exc!r}", started
                ) from exc
            log.warning("%s: attempt %d failed (%r); will retry", self.consumer, started, exc)
            await asyncio.sleep(self.retry_delay_s * 2 ** (started - 1))
            raise  # nack: the consumer seeks back and the record comes again
        await self._forget(keys, counter)
        if self._hold_before_ack_s:
            log.warning(
                "%s: holding %.0fs before the ack (fault injection)",
                self.consumer,
                self._hold_before_ack_s,
            )
            await asyncio.sleep(self._hold_before_ack_s)

    async def _begin(self, keys: Sequence[RecordKey], counter: str) -> int:
        """Count a start of handling for each record (before it runs); the highest count."""
        if self._pool is None:
            for key in keys:
                self._attempts[counter, key] = self._attempts.get((counter, key), 0) + 1
            return max(self._attempts[counter, key] for key in keys)
        try:
            with untraced():  # bookkeeping: no spans in the job's trace
                async with self._pool().connection() as conn:
                    return await dead_letters.begin_attempt(conn, counter, keys)
        except Exception as exc:  # Postgres away: the handler could not commit either; later
            log.warning("%s: cannot count the attempt (%r); will retry", self.consumer, exc)
            await asyncio.sleep(self.retry_delay_s)
            raise

    async def _forget(self, keys: Sequence[RecordKey], *counters: str) -> None:
        if self._pool is None:
            for counter in counters:
                for key in keys:
                    self._attempts.pop((counter, key), None)
            return
        # One round trip, untraced (bookkeeping: no spans in the job's trace), not waiting for
        # the disk: a crash of Postgres could only leave a count over.
        with untraced():
            async with self._pool().connection() as conn, conn.pipeline():
                await conn.execute("SET LOCAL synchronous_commit TO off")
                await dead_letters.end_attempts(conn, counters, keys)
                await conn.commit()

    async def dead_letter(
        self, record: ConsumerRecord, code: str, reason: str, attempts: int = 1
    ) -> None:
        """Publish the record whole to its topic's dead-letter topic, with the reason: once per
        record, whichever of the groups refuse it (the others are added to its `consumers`)."""
        letter = DeadLettered(
            original_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=_text(record.key) if record.key is not None else None,
            headers={k: _text(v) for k, v in record.headers or ()},
            payload_base64=base64.b64encode(record.value or b"").decode(),
            consumer=self.consumer,
            reason_code=code,
            reason=reason[:8000],
            attempts=attempts,
        )
        if self._pool is None:
            await self._publish_letter(record, letter)
            return
        try:
            await self._claim_and_publish(record, letter, code, attempts)
        except Exception as exc:  # Postgres or Kafka away: the record comes again, not at once
            log.warning("%s: cannot dead-letter yet (%r); will retry", self.consumer, exc)
            await asyncio.sleep(self.retry_delay_s)
            raise

    async def _claim_and_publish(
        self, record: ConsumerRecord, letter: DeadLettered, code: str, attempts: int
    ) -> None:
        assert self._pool is not None
        async with self._pool().connection() as conn:  # one transaction: the claim's row lock
            claimed = await dead_letters.claim(
                conn,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=_bytes(record.key),
                headers=[(k, _bytes(v) or b"") for k, v in record.headers or ()],
                payload=record.value or b"",
                consumer=self.consumer,
                reason_code=code,
                reason=letter.reason,
                attempts=attempts,
            )
            if claimed["published_at"] is None:
                await self._publish_letter(record, letter.model_copy(update={"id": claimed["id"]}))
                await dead_letters.mark_published(conn, claimed["id"])
            else:
                log.info(
                    "%s: %s[%d]@%d is dead letter %d already (%s); not published again",
                    self.consumer, record.topic, record.partition, record.offset,
                    claimed["id"], ", ".join(claimed["consumers"]),
                )  # fmt: skip
            await dead_letters.end_attempts(
                conn,
                [self.consumer, self._single],
                [(record.topic, record.partition, record.offset)],
            )

    async def _publish_letter(self, record: ConsumerRecord, letter: DeadLettered) -> None:
        """The one place a dead letter is published."""
        await self.broker.publish(
            letter.to_bytes(),
            dead_letter_topic(record.topic),
            key=record.key,
            headers={
                "content-type": "application/json",
                "x-dead-letter-reason": letter.reason_code,
            },
        )
        DEAD_LETTERS.labels(record.topic, letter.reason_code).inc()
        log.warning(
            "%s: dead-lettered %s[%d]@%d: %s: %s",
            self.consumer,
            record.topic,
            record.partition,
            record.offset,
            letter.reason_code,
            letter.reason[:300],
        )


@dataclass
class _Decoded(Generic[E]):
    """A batch decoded: its events, the records refused with why, and the work prepared for
    the events, if any."""

    good: list[tuple[ConsumerRecord, E]] = field(default_factory=list)
    refused: list[tuple[ConsumerRecord, Rejected]] = field(default_factory=list)
    work: Callable[[], Awaitable[None]] | None = None  # handles `good` together, if prepared


@dataclass
class _Flight:
    """A batch being handled in the background."""

    records: Sequence[ConsumerRecord]
    task: asyncio.Task[None]

    async def handled(self) -> bool:
        """Wait for it; whether it was handled or failed (and rewound)."""
        try:
            await asyncio.shield(self.task)
        except asyncio.CancelledError:
            if not self.task.done():
                raise  # we are cancelled, not it
            return False
        except Exception:
            return False  # logged where it failed; the batch comes again
        return True


async def _commit_after(
    handling: asyncio.Task[None],
    previous: asyncio.Task[None] | None,
    consumer: Any,
    records: Sequence[ConsumerRecord],
    group: str,
) -> None:
    """Commit a batch's offsets once it was handled, after its predecessor's (off the path of
    the next batch's handling: it needs only this one handled, not committed)."""
    try:
        await handling
    except BaseException:
        return  # rewound; its records come again
    if previous is not None:
        await asyncio.wait([previous])  # in order; its failure was logged, ours covers it
    last: dict[tuple[str, int], int] = {}
    for r in records:  # a plain loop: it runs for every record of every batch
        key, offset = (r.topic, r.partition), r.offset
        if last.get(key, -1) < offset:
            last[key] = offset
    next_offsets = {TopicPartition(*key): offset + 1 for key, offset in last.items()}
    try:
        await consumer.commit(next_offsets)
    except Exception as exc:  # a rebalance took the partitions: their new owner redoes them
        log.warning("%s: offsets %s not committed (%r); the batch comes again, and handling "
                    "it is idempotent", group, next_offsets, exc)  # fmt: skip


def _rewind(consumer: Any, records: Sequence[ConsumerRecord]) -> None:
    """Seek each partition back to its earliest record here, so all of them come again."""
    earliest: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        earliest[tp] = min(earliest.get(tp, r.offset), r.offset)
    for tp, offset in earliest.items():
        try:
            consumer.seek(tp, offset)
        except IllegalStateError:  # no longer ours: its new owner starts from the commit
            log.info("%s[%d] was reassigned; not rewound here", tp.topic, tp.partition)


def counted_keys(records: Sequence[ConsumerRecord]) -> list[RecordKey]:
    """The keys whose attempt counts stand for a batch: its first record of each partition.

    A batch that is tried again (after a nack, a crash or a rebalance) starts where the group's
    committed offset is, so it starts at the same records and their counts go up, whatever the
    rest of the batch holds this time; a single record is counted as itself.
    """
    first: dict[tuple[str, int], int] = {}
    for r in records:  # a plain loop: it runs for every record of every batch
        key, offset = (r.topic, r.partition), r.offset
        if first.get(key, offset) >= offset:
            first[key] = offset
    return [(topic, partition, offset) for (topic, partition), offset in first.items()]


def records_of(message: Any) -> tuple[ConsumerRecord, ...]:
    """The Kafka records behind a FastStream message, single or batch."""
    raw = message.raw_message
    return raw if isinstance(raw, tuple) else (raw,)


def _text(value: bytes | str) -> str:
    if isinstance(value, str):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(value).decode()


def _bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors()[:10]
    )
