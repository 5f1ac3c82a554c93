"""The job store: jobs as their events describe them, the progress log, handled-event records.

Every function takes an open connection and leaves the transaction to the caller, so a
consumer commits its effects together and acknowledges the message only afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from pydantic_core import to_json

from lorag_core.contracts import JobProgress, JobRequested
from lorag_core.db.changes import CHANNEL as CHANGED_CHANNEL
from lorag_core.domain.job_state import JobPosition, JobState, Verdict

Row = dict[str, Any]

UPSERT_REQUESTED = """
INSERT INTO jobs (job_id, requested_type, effective_type, owner, minion_id, parent_job_id,
                  stage_name, request, trace_id, requested_at)
VALUES (%(job_id)s, %(requested_type)s, %(effective_type)s, %(owner)s, %(minion_id)s,
        %(parent_job_id)s, %(stage_name)s, %(request)s, %(trace_id)s, %(requested_at)s)
ON CONFLICT (job_id) DO UPDATE SET
    requested_type = EXCLUDED.requested_type, effective_type = EXCLUDED.effective_type,
    owner = EXCLUDED.owner, minion_id = EXCLUDED.minion_id,
    parent_job_id = EXCLUDED.parent_job_id, stage_name = EXCLUDED.stage_name,
    request = EXCLUDED.request, trace_id = COALESCE(jobs.trace_id, EXCLUDED.trace_id),
    requested_at = EXCLUDED.requested_at, updated_at = now()
WHERE jobs.request IS NULL
RETURNING (xmax = 0) AS created
"""

INSERT_PROGRESS = """
INSERT INTO job_progress (job_id, seq, event_id, state, producer, stage, percent, eta_seconds,
                          metrics, message, result, error, verdict, occurred_at)
VALUES (%(job_id)s, %(seq)s, %(event_id)s, %(state)s, %(producer)s, %(stage)s, %(percent)s,
        %(eta_seconds)s, %(metrics)s, %(message)s, %(result)s, %(error)s, %(verdict)s,
        %(occurred_at)s)
ON CONFLICT (job_id, seq) DO NOTHING
"""

PROGRESS_COLUMNS = (
    "job_id",
    "seq",
    "event_id",
    "state",
    "producer",
    "stage",
    "percent",
    "eta_seconds",
    "metrics",
    "message",
    "result",
    "error",
    "verdict",
    "occurred_at",
)
# Batches arrive by COPY into a per-connection scratch table, then move over in one statement:
# several times faster than row-by-row inserts, and duplicates are still skipped by the key.
STAGE_PROGRESS = """
CREATE TEMP TABLE IF NOT EXISTS incoming_progress
    (LIKE job_progress INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""
COPY_PROGRESS = f"COPY incoming_progress ({', '.join(PROGRESS_COLUMNS)}) FROM STDIN"
MOVE_PROGRESS = f"""
INSERT INTO job_progress ({", ".join(PROGRESS_COLUMNS)})
SELECT {", ".join(PROGRESS_COLUMNS)} FROM incoming_progress
ON CONFLICT (job_id, seq) DO NOTHING
"""

# A batch's log rows move over, its jobs move to their newest position and the changes are
# announced in one statement: one round trip and one plan for the whole batch, where an UPDATE
# per job cost a statement each. Positions travel as parallel arrays (one element per job).
POSITION_ARRAYS = (
    ("job_id", "text"), ("state", "text"), ("seq", "bigint"), ("stage", "text"),
    ("percent", "real"), ("eta_seconds", "real"), ("metrics", "jsonb"), ("message", "text"),
    ("result", "jsonb"), ("error", "jsonb"), ("terminal", "boolean"),
)  # fmt: skip
FOLD_BATCH = f"""
WITH logged AS ({MOVE_PROGRESS}),
positions AS (
    SELECT * FROM unnest({", ".join(f"%s::{t}[]" for _, t in POSITION_ARRAYS)})
        AS p ({", ".join(n for n, _ in POSITION_ARRAYS)})
),
moved AS (
    UPDATE jobs SET state = p.state, last_seq = p.seq, stage = COALESCE(p.stage, jobs.stage),
        percent = COALESCE(p.percent, jobs.percent), eta_seconds = p.eta_seconds,
        metrics = jobs.metrics || p.metrics, message = COALESCE(p.message, jobs.message),
        result = COALESCE(p.result, jobs.result), error = COALESCE(p.error, jobs.error),
        finished_at = CASE WHEN p.terminal THEN COALESCE(jobs.finished_at, now()) END,
        updated_at = now()
    FROM positions p WHERE jobs.job_id = p.job_id
    RETURNING jobs.job_id, jobs.state
)
SELECT pg_notify(%s, state || ' ' || job_id) FROM moved
"""


async def record_requested(
    conn: AsyncConnection[Any], event: JobRequested, *, trace_id: str | None = None
) -> bool:
    """Create the QUEUED job for a request; a redelivered request changes nothing. True if new."""
    resolved = event.resolved
    cur = await conn.execute(
        UPSERT_REQUESTED,
        {
            "job_id": event.job_id,
            "requested_type": resolved.requested.value,
            "effective_type": resolved.effective.value,
            "owner": event.owner,
            "minion_id": event.minion_id,
            "parent_job_id": event.parent_job_id,
            "stage_name": event.stage,
            "request": Jsonb(event.model_dump(mode="json")),
            "trace_id": trace_id,
            "requested_at": event.occurred_at,
        },
    )
    row = await cur.fetchone()
    if row is not None and resolved.deprecation_notice:
        # Sequence 0 is the request itself; the notice sits first in the job's progress log.
        await conn.execute(
            INSERT_PROGRESS,
            _progress_row(
                event.job_id,
                0,
                event.event_id,
                JobState.QUEUED,
                "job-tracker",
                message=resolved.deprecation_notice,
                occurred_at=event.occurred_at,
                verdict=Verdict.APPLIED,
            ),
        )
    return bool(row and row["created"])


@dataclass(frozen=True)
class Fold:
    """A batch of progress events folded from where its jobs stood (`start`, every job of the
    batch): each event's log row with its verdict, and each moved job's newest event and
    position. A pure function of the events and `start` (see `fold`)."""

    start: dict[str, JobPosition]
    log_rows: list[tuple[Any, ...]]
    newest: dict[str, tuple[JobProgress, JobPosition]]

    @property
    def ended(self) -> list[tuple[str, JobState]]:
        """The jobs this batch moved into a terminal state, with that state."""
        return [(job_id, p.state) for job_id, (_, p) in self.newest.items() if p.state.is_terminal]

    def positions(self) -> dict[str, JobPosition]:
        """Where each of the batch's jobs stands after it."""
        return self.start | {job_id: p for job_id, (_, p) in self.newest.items()}


def fold(events: Sequence[JobProgress], start: Mapping[str, JobPosition]) -> Fold:
    """Fold the events, each job's in sequence order, from the jobs' `start` positions."""
    steps = fold_in_steps(events, start, every=len(events) + 1)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


async def fold_yielding(
    events: Sequence[JobProgress], start: Mapping[str, JobPosition], every: int
) -> Fold:
    """`fold`, letting the event loop run after every `every` events."""
    steps = fold_in_steps(events, start, every)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        await asyncio.sleep(0)


def fold_in_steps(
    events: Sequence[JobProgress], start: Mapping[str, JobPosition], every: int
) -> Generator[None, None, Fold]:
    """The fold, pausing (a bare yield) after every `every` events; it returns the Fold."""
    positions = dict(start)
    log_rows, newest = [], {}
    for n, event in enumerate(sorted(events, key=attrgetter("job_id", "seq")), 1):
        position, verdict = positions[event.job_id].advance(event.seq, event.state)
        positions[event.job_id] = position
        log_rows.append(_copy_row(event, verdict))
        if verdict is Verdict.APPLIED:
            newest[event.job_id] = (event, position)
        if n % every == 0:
            yield
    return Fold(dict(start), log_rows, newest)


async def apply_progress(
    conn: AsyncConnection[Any],
    events: Sequence[JobProgress],
    *,
    idle_in_transaction_ms: int | None = None,
    guess: Fold | None = None,
) -> Fold | None:
    """Fold progress events into jobs and the log; duplicates and late events change nothing.
    Returns the fold applied (None for no events): `ended` says which jobs it finished.

    `guess`, a fold of the same events made ahead of time from where the caller believed the
    jobs stood, is applied as it is when the jobs, locked, stand exactly there; otherwise the
    events are folded again from where they do stand. `idle_in_transaction_ms`, when given, is
    set as the transaction's idle limit, pipelined with its first statements.
    """
    if not events:
        return None
    job_ids = sorted({e.job_id for e in events})
    # Three round trips a batch: lock the jobs (pipelined), COPY the log, fold (FOLD_BATCH).
    # (The log rows could travel as one JSON or array parameter of FOLD_BATCH instead, saving
    # COPY's round trips, but parsing them costs Postgres more than COPY: measured slower.)
    async with conn.pipeline():
        if idle_in_transaction_ms is not None:
            await conn.execute(
                "SELECT set_config('idle_in_transaction_session_timeout', %s, true)",
                (f"{idle_in_transaction_ms}ms",),
            )
        await conn.execute(STAGE_PROGRESS)
        # Progress may overtake its request (different topics): the request fills the row later.
        await conn.execute(
            "INSERT INTO jobs (job_id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
            (job_ids,),
        )
        cur = await conn.execute(
            "SELECT job_id, state, last_seq FROM jobs WHERE job_id = ANY(%s)"
            " ORDER BY job_id FOR UPDATE",  # one lock order: concurrent trackers never deadlock
            (job_ids,),
        )
        rows = await cur.fetchall()
    positions = {r["job_id"]: JobPosition(JobState(r["state"]), r["last_seq"]) for r in rows}
    folded = guess if guess is not None and guess.start == positions else fold(events, positions)

    async with conn.cursor() as c:
        async with c.copy(COPY_PROGRESS) as copy:
            for row in folded.log_rows:
                await copy.write_row(row)
        await c.execute(FOLD_BATCH, (*_position_arrays(folded.newest), CHANGED_CHANNEL))
    return folded


def _position_arrays(newest: dict[str, tuple[JobProgress, JobPosition]]) -> list[list[Any]]:
    """Each job's newest applied event as one element of each of POSITION_ARRAYS' arrays."""
    columns: list[list[Any]] = [[] for _ in POSITION_ARRAYS]
    for job_id, (event, position) in newest.items():
        values = (
            job_id, position.state, position.seq, event.stage, event.percent,
            event.eta_seconds, _json(event.metrics), event.message,
            event.result.model_dump_json() if event.result else None,
            event.error.model_dump_json() if event.error else None, position.state.is_terminal,
        )  # fmt: skip
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


async def request_cancel(conn: AsyncConnection[Any], job_id: str, reason: str) -> Row | None:
    """Note that someone asked to cancel; the running service stops and reports CANCELLED."""
    cur = await conn.execute(
        "UPDATE jobs SET cancel_requested_at = COALESCE(cancel_requested_at, now()),"
        " cancel_reason = COALESCE(cancel_reason, %s), updated_at = now()"
        " WHERE job_id = %s RETURNING job_id, state, cancel_requested_at",
        (reason, job_id),
    )
    return await cur.fetchone()


async def get_job(conn: AsyncConnection[Any], job_id: str) -> Row | None:
    cur = await conn.execute("SELECT * FROM jobs WHERE job_id = %s", (job_id,))
    return await cur.fetchone()


async def list_jobs(
    conn: AsyncConnection[Any],
    *,
    owner: str | None = None,
    state: JobState | None = None,
    training_type: str | None = None,
    limit: int = 50,
    before: str | None = None,
) -> list[Row]:
    """Newest jobs first, filtered by owner, state and effective type.

    `before` pages on: only the jobs that come after that one (the last of the previous page)
    in the listing's order. LookupError if there is no such job (of that owner, given one).
    """
    cursor: Row = {"created_at": None, "job_id": None}
    if before is not None:
        cur = await conn.execute(
            "SELECT created_at, job_id FROM jobs"
            " WHERE job_id = %(job_id)s AND (%(owner)s::text IS NULL OR owner = %(owner)s)",
            {"job_id": before, "owner": owner},
        )
        found = await cur.fetchone()
        if found is None:
            raise LookupError(f"no job {before!r} to page from")
        cursor = found
    # The order is created_at DESC, job_id ASC, so "after the cursor" is an older job, or one as
    # old with a larger id: the row comparison swaps created_at to say both at once.
    cur = await conn.execute(
        "SELECT job_id, requested_type, effective_type, owner, minion_id, state, stage, percent,"
        " eta_seconds, parent_job_id, created_at, updated_at, finished_at FROM jobs"
        " WHERE (%(owner)s::text IS NULL OR owner = %(owner)s)"
        " AND (%(state)s::text IS NULL OR state = %(state)s)"
        " AND (%(type)s::text IS NULL OR effective_type = %(type)s)"
        " AND (%(after_id)s::text IS NULL"
        "      OR (%(after_at)s::timestamptz, job_id) > (created_at, %(after_id)s::text))"
        " ORDER BY created_at DESC, job_id LIMIT %(limit)s",
        {
            "owner": owner,
            "state": state,
            "type": training_type,
            "limit": limit,
            "after_at": cursor["created_at"],
            "after_id": cursor["job_id"],
        },
    )
    return await cur.fetchall()


async def progress_log(conn: AsyncConnection[Any], job_id: str) -> list[Row]:
    """A job's progress events in sequence order, with what each did to the job."""
    cur = await conn.execute(
        "SELECT seq, state, verdict, producer, stage, percent, eta_seconds, metrics, message,"
        " result, error, occurred_at FROM job_progress WHERE job_id = %s ORDER BY seq",
        (job_id,),
    )
    return await cur.fetchall()


async def mark_processed(conn: AsyncConnection[Any], consumer: str, event_id: object) -> bool:
    """Record that a consumer handled an event; False when it already had (a redelivery)."""
    cur = await conn.execute(
        "INSERT INTO processed_events (consumer, event_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (consumer, event_id),
    )
    return cur.rowcount == 1


def _event_row(event: JobProgress, verdict: Verdict) -> Row:
    return _progress_row(
        event.job_id,
        event.seq,
        event.event_id,
        event.state,
        event.producer,
        stage=event.stage,
        percent=event.percent,
        eta_seconds=event.eta_seconds,
        metrics=event.metrics,
        message=event.message,
        result=event.result.model_dump(mode="json") if event.result else None,
        error=event.error.model_dump(mode="json") if event.error else None,
        occurred_at=event.occurred_at,
        verdict=verdict,
    )


def _json(value: Any) -> str:
    """JSON text as the contracts write it (a non-finite float becomes null, which jsonb
    accepts; json.dumps writes Infinity, which it refuses), about 7x faster than json.dumps."""
    return to_json(value, inf_nan_mode="null").decode()


def _copy_row(event: JobProgress, verdict: Verdict) -> tuple[Any, ...]:
    """A progress event as a COPY row, in PROGRESS_COLUMNS order; JSON columns as JSON text."""
    return (
        event.job_id,
        event.seq,
        event.event_id,
        event.state,  # a StrEnum: COPY writes it as the str it is, without the enum's .value
        event.producer,
        event.stage,
        event.percent,
        event.eta_seconds,
        _json(event.metrics),
        event.message,
        event.result.model_dump_json() if event.result else None,
        event.error.model_dump_json() if event.error else None,
        verdict,
        event.occurred_at.isoformat(),  # text: psycopg's datetime dumper took 1.5 us a row
    )


def _progress_row(
    job_id,
    seq,
    event_id,
    state,
    producer,
    *,
    verdict,
    occurred_at,
    stage=None,
    percent=None,
    eta_seconds=None,
    metrics=None,
    message=None,
    result=None,
    error=None,
) -> Row:
    return {
        "job_id": job_id,
        "seq": seq,
        "event_id": event_id,
        "state": state.value,
        "producer": producer,
        "stage": stage,
        "percent": percent,
        "eta_seconds": eta_seconds,
        "metrics": Jsonb(metrics or {}),
        "message": message,
        "result": Jsonb(result) if result is not None else None,
        "error": Jsonb(error) if error is not None else None,
        "verdict": verdict.value,
        "occurred_at": occurred_at,
    }
