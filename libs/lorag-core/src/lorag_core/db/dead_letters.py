"""Delivery attempts that survive a crash, and the dead letters (one per record) `lorag dlq` reads.

The consumer side (`lorag_core.messaging.delivery`) counts an attempt before its handler runs
and claims a record's dead letter here; the admin side lists, shows and marks replays.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

Row = dict[str, Any]
RecordKey = tuple[str, int, int]  # topic, partition, offset
SUMMARY = (
    'id, original_topic, partition, "offset", consumers, reason_code, reason, attempts,'
    " created_at, published_at, replays, replayed_at, octet_length(payload) AS payload_bytes"
)


async def begin_attempt(
    conn: AsyncConnection[Any], consumer: str, keys: Sequence[RecordKey]
) -> int:
    """Count one more start of handling for each record and commit (one round trip); the
    highest count among them.

    The count must outlive a crash of the consumer it counts, which a commit gives at once; it
    need not wait for the WAL to reach the disk (only a crash of Postgres itself could lose the
    newest counts, and then a record only gets one more try).
    """
    async with conn.pipeline():
        await conn.execute("SET LOCAL synchronous_commit TO off")
        cur = await conn.execute(
            'INSERT INTO delivery_attempts AS a (consumer, topic, partition, "offset", attempts)'
            " SELECT %s, t, p, o, 1 FROM unnest(%s::text[], %s::int[], %s::bigint[]) AS k(t, p, o)"
            ' ON CONFLICT (consumer, topic, partition, "offset")'
            " DO UPDATE SET attempts = a.attempts + 1, last_at = now()"
            " RETURNING attempts",
            (consumer, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
        )
        await conn.commit()
    return max(row["attempts"] for row in await cur.fetchall())


async def end_attempts(
    conn: AsyncConnection[Any], consumers: Sequence[str], keys: Sequence[RecordKey]
) -> None:
    """Forget the counts of records that were handled or set aside."""
    await conn.execute(
        'DELETE FROM delivery_attempts WHERE consumer = ANY(%s) AND (topic, partition, "offset")'
        " IN (SELECT * FROM unnest(%s::text[], %s::int[], %s::bigint[]))",
        (list(consumers), [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
    )


async def claim(
    conn: AsyncConnection[Any],
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    headers: Sequence[tuple[str, bytes]],
    payload: bytes,
    consumer: str,
    reason_code: str,
    reason: str,
    attempts: int,
) -> Row:
    """The record's dead letter, created by the first consumer group to refuse it.

    Run it inside a transaction: the row stays locked until commit, so a second group that
    refuses the same record at the same moment waits here and then sees `published_at` set.
    """
    cur = await conn.execute(
        "INSERT INTO dead_letters AS d (original_topic, partition, \"offset\", key, headers,"
        " payload, consumers, reason_code, reason, attempts)"
        " VALUES (%s, %s, %s, %s, %s, %s, ARRAY[%s::text], %s, %s, %s)"
        " ON CONFLICT (original_topic, partition, \"offset\") DO UPDATE SET consumers ="
        " CASE WHEN %s = ANY(d.consumers) THEN d.consumers"
        " ELSE array_append(d.consumers, %s::text) END"
        " RETURNING id, published_at, consumers",
        (
            topic, partition, offset, key, Jsonb(encode_headers(headers)), payload, consumer,
            reason_code, reason, attempts, consumer, consumer,
        ),
    )  # fmt: skip
    row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def mark_published(conn: AsyncConnection[Any], letter_id: int) -> None:
    await conn.execute("UPDATE dead_letters SET published_at = now() WHERE id = %s", (letter_id,))


async def list_letters(
    conn: AsyncConnection[Any], topic: str | None = None, limit: int = 1000
) -> list[Row]:
    """Dead letters, newest first, of one input topic or of all."""
    where, args = ("WHERE original_topic = %s", [topic]) if topic else ("", [])
    cur = await conn.execute(
        f"SELECT {SUMMARY} FROM dead_letters {where} ORDER BY id DESC LIMIT %s",
        (*args, limit),
    )
    return list(await cur.fetchall())


async def get_letter(conn: AsyncConnection[Any], letter_id: int) -> Row | None:
    """One dead letter whole: its summary, key, headers and payload."""
    cur = await conn.execute(
        f"SELECT {SUMMARY}, key, headers, payload FROM dead_letters WHERE id = %s",
        (letter_id,),
    )
    return await cur.fetchone()


async def mark_replayed(conn: AsyncConnection[Any], letter_id: int) -> None:
    await conn.execute(
        "UPDATE dead_letters SET replays = replays + 1, replayed_at = now() WHERE id = %s",
        (letter_id,),
    )


def encode_headers(headers: Sequence[tuple[str, bytes]]) -> list[list[str]]:
    """Kafka headers as JSON: names as text, values in base64 (bytes survive as they were)."""
    return [[name, base64.b64encode(value or b"").decode()] for name, value in headers]


def decode_headers(stored: Sequence[Sequence[str]]) -> list[tuple[str, bytes]]:
    """The Kafka headers `encode_headers` stored."""
    return [(name, base64.b64decode(value)) for name, value in stored]
