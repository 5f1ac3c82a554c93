"""The durable work queue: accept once, claim with a lease, hand the sequence numbers out."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from lorag_core.contracts import JobRequested
from lorag_core.telemetry import current_traceparent

Row = dict[str, Any]


async def accept(conn: AsyncConnection[Any], service: str, event: JobRequested) -> bool:
    """Store a job for this service; a redelivered request changes nothing. True if new.

    The current trace context is stored with it: the worker's spans continue the request's trace.
    """
    cur = await conn.execute(
        "INSERT INTO work_items (service, job_id, request, traceparent) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (service, event.job_id, Jsonb(event.model_dump(mode="json")), current_traceparent()),
    )
    return cur.rowcount == 1


async def claim(
    conn: AsyncConnection[Any], service: str, worker: str, lease_owner: str, lease_s: float
) -> Row | None:
    """Take the oldest job that is queued or whose worker's lease ran out (it crashed).

    Every claim is an attempt: `attempts` counts them and `workers` names the instance of each.
    `lease_owner` is unique to the claiming loop, so a restarted instance of the same name never
    renews the lease of the process it replaced.
    """
    cur = await conn.execute(
        """
        UPDATE work_items SET status = 'running', lease_owner = %(lease_owner)s,
            lease_until = now() + make_interval(secs => %(lease)s), attempts = attempts + 1,
            workers = array_append(workers, %(worker)s), updated_at = now()
        WHERE (service, job_id) = (
            SELECT service, job_id FROM work_items
            WHERE service = %(service)s AND status <> 'done'
              AND (status = 'queued' OR lease_until < now())
            ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING job_id, request, attempts, workers, next_seq, traceparent
        """,
        {"service": service, "worker": worker, "lease_owner": lease_owner, "lease": lease_s},
    )
    return await cur.fetchone()


async def record_worker(conn: AsyncConnection[Any], job_id: str, worker: str) -> None:
    """Name the instance running the job on its record (`jobs.worker`).

    The row may not exist yet when the tracker has not seen the request: it then starts with the
    worker alone, and the request fills in the rest (as progress that overtakes its request does).
    """
    await conn.execute(
        "INSERT INTO jobs (job_id, worker) VALUES (%s, %s)"
        " ON CONFLICT (job_id) DO UPDATE SET worker = EXCLUDED.worker, updated_at = now()",
        (job_id, worker),
    )


async def release(conn: AsyncConnection[Any], service: str, job_id: str, lease_owner: str) -> bool:
    """Give a job back on a graceful stop: queued again at once, and the attempt not counted.

    Only a worker that died (no release) uses up an attempt; a rolling restart does not.
    """
    cur = await conn.execute(
        "UPDATE work_items SET status = 'queued', attempts = greatest(attempts - 1, 0),"
        " lease_owner = NULL, lease_until = NULL, updated_at = now()"
        " WHERE service = %s AND job_id = %s AND lease_owner = %s AND status = 'running'",
        (service, job_id, lease_owner),
    )
    return cur.rowcount == 1


async def renew(
    conn: AsyncConnection[Any], service: str, job_id: str, owner: str, lease_s: float
) -> bool:
    """Extend our lease; False when another worker took the job over."""
    cur = await conn.execute(
        "UPDATE work_items SET lease_until = now() + make_interval(secs => %s)"
        " WHERE service = %s AND job_id = %s AND lease_owner = %s AND status = 'running'",
        (lease_s, service, job_id, owner),
    )
    return cur.rowcount == 1


async def take_seq(conn: AsyncConnection[Any], service: str, job_id: str) -> int:
    """The job's next progress sequence number; it survives restarts, so seq never repeats."""
    cur = await conn.execute(
        "UPDATE work_items SET next_seq = next_seq + 1 WHERE service = %s AND job_id = %s"
        " RETURNING next_seq - 1 AS seq",
        (service, job_id),
    )
    row = await cur.fetchone()
    assert row is not None, f"no work item {service}/{job_id}"
    return int(row["seq"])


async def finish(conn: AsyncConnection[Any], service: str, job_id: str, outcome: str) -> None:
    """The job ended (with `outcome`): it is never claimed again."""
    await conn.execute(
        "UPDATE work_items SET status = 'done', outcome = %s, lease_owner = NULL,"
        " lease_until = NULL, updated_at = now() WHERE service = %s AND job_id = %s",
        (outcome, service, job_id),
    )


async def backlog(conn: AsyncConnection[Any], service: str) -> int:
    """How many of this service's work items wait for a worker (queued, not yet claimed)."""
    cur = await conn.execute(
        "SELECT count(*) AS n FROM work_items WHERE service = %s AND status = 'queued'", (service,)
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def cancel_requested(conn: AsyncConnection[Any], job_id: str) -> bool:
    cur = await conn.execute(
        "SELECT cancel_requested_at IS NOT NULL AS asked FROM jobs WHERE job_id = %s", (job_id,)
    )
    row = await cur.fetchone()
    return bool(row and row["asked"])
