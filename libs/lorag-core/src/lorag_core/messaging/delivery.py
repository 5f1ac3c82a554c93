"""At-least-once delivery for one consumer group, with a dead-letter topic per input topic.

Subscribers use `AckPolicy.NACK_ON_ERROR`: the offset is committed only after the handler
returned, that is after its effects were committed. A message that can never be handled
(not JSON, not the contract, too large, or failing `max_attempts` times) is published whole
to `<topic>.dlq` with the reason, and the consumer goes on with the next one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from lorag_core.contracts import DeadLettered, Event, JobRequested, dead_letter_topic
from lorag_core.contracts.legacy import is_legacy_request
from lorag_core.metrics import DEAD_LETTERS

E = TypeVar("E", bound=Event)
log = logging.getLogger(__name__)


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
    try:  # the fast path: pydantic parses the JSON itself
        return event_type.model_validate_json(raw)
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
    try:
        return event_type.model_validate(data)
    except ValidationError as exc:
        raise Rejected("INVALID_CONTRACT", _short(exc)) from None


class Delivery:
    """Decode, handle and acknowledge-or-retry the messages of one consumer group."""

    def __init__(
        self,
        broker: KafkaBroker,
        consumer: str,
        *,
        max_message_bytes: int,
        max_attempts: int,
        retry_delay_s: float = 0.5,
    ) -> None:
        self.broker = broker
        self.consumer = consumer
        self.max_message_bytes = max_message_bytes
        self.max_attempts = max_attempts
        self.retry_delay_s = retry_delay_s
        self._attempts: dict[tuple[str, int, int], int] = {}
        # Fault injection for crash tests: hold after the effects commit, before the ack.
        self._hold_before_ack_s = float(os.environ.get("LORAG_FAULT_HOLD_BEFORE_ACK_S", "0"))

    async def one(
        self, record: ConsumerRecord, event_type: type[E], handler: Callable[[E], Awaitable[None]]
    ) -> None:
        """Handle one record; raise to have it redelivered, return to have it acknowledged."""
        try:
            event = decode(record, event_type, self.max_message_bytes)
            await self._attempt([record], handler(event))
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
        good: list[tuple[ConsumerRecord, E]] = []
        for record in records:
            try:
                good.append((record, decode(record, event_type, self.max_message_bytes)))
            except Rejected as rejected:
                await self.dead_letter(record, rejected.code, rejected.reason)
            except NotForUs:
                pass
        if not good:
            return
        try:
            await self._attempt([r for r, _ in good], handler([e for _, e in good]))
        except Rejected:
            # Some record in the batch poisons it: handle them one by one to find which.
            for record, event in good:
                try:
                    await handler([event])
                except Exception as exc:
                    await self.dead_letter(record, getattr(exc, "code", "HANDLER_FAILED"), str(exc))

    async def _attempt(self, records: Sequence[ConsumerRecord], work: Awaitable[None]) -> None:
        keys = [(r.topic, r.partition, r.offset) for r in records]
        try:
            await work
        except Rejected:
            raise
        except Exception as exc:
            tries = max(self._attempts.get(k, 0) for k in keys) + 1
            if tries >= self.max_attempts:
                for k in keys:
                    self._attempts.pop(k, None)
                raise Rejected(
                    "HANDLER_FAILED", f"failed {tries} times, last: {exc!r}", tries
                ) from exc
            for k in keys:
                self._attempts[k] = tries
            log.warning("%s: attempt %d failed (%r); will retry", self.consumer, tries, exc)
            await asyncio.sleep(self.retry_delay_s * 2 ** (tries - 1))
            raise  # nack: the consumer seeks back and the record comes again
        for k in keys:
            self._attempts.pop(k, None)
        if self._hold_before_ack_s:
            log.warning(
                "%s: holding %.0fs before the ack (fault injection)",
                self.consumer,
                self._hold_before_ack_s,
            )
            await asyncio.sleep(self._hold_before_ack_s)

    async def dead_letter(
        self, record: ConsumerRecord, code: str, reason: str, attempts: int = 1
    ) -> None:
        """Publish the record whole to its topic's dead-letter topic, with the reason."""
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
        await self.broker.publish(
            letter.to_bytes(),
            dead_letter_topic(record.topic),
            key=record.key,
            headers={"content-type": "application/json", "x-dead-letter-reason": code},
        )
        DEAD_LETTERS.labels(record.topic, code).inc()
        log.warning(
            "%s: dead-lettered %s[%d]@%d: %s: %s",
            self.consumer,
            record.topic,
            record.partition,
            record.offset,
            code,
            reason[:300],
        )


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


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors()[:10]
    )
