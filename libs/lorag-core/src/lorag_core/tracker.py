"""Job state follows the events: the one projection of `job.requested`, `job.progress` and
`job.cancel` into Postgres.

Every service process hosts it (`register_job_tracker`), in shared consumer groups, so whatever
subset of services a deployment runs, the jobs table stays current and each event is projected
by exactly one member. Delivery is at least once; the projection is idempotent.

A frozen member (SIGSTOP) stalls the others for a bounded time only: Kafka expels it after
LORAG_KAFKA_SESSION_TIMEOUT_MS and its partitions move on, and Postgres ends a transaction it was
frozen in after LORAG_POSTGRES_TRACKER_IDLE_IN_TRANSACTION_MS, releasing the job rows it locked
(the redelivered events would otherwise wait on those locks until it thaws).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from faststream.kafka.annotations import KafkaMessage
from psycopg import AsyncConnection

from lorag_core.contracts import JobCancelRequested, JobProgress, JobRequested
from lorag_core.db import jobs
from lorag_core.domain.job_state import JobPosition
from lorag_core.messaging.delivery import records_of
from lorag_core.messaging.topics import JOB_CANCEL, JOB_PROGRESS, JOB_REQUESTED
from lorag_core.service.host import Runtime, ServiceHost
from lorag_core.telemetry import (
    current_trace_id,
    job_attributes,
    job_context,
    stage_span,
    untraced,
)

TRACKER_GROUP = "lorag.job-tracker"
# Progress events folded in one transaction. Per batch, the tracker waits on a few round trips
# (the attempt count, the lock, COPY, the fold, the commit) with neither it nor Postgres busy, so
# larger batches leave fewer such waits: bench events' 100,000 events projected 20,027-27,117
# events/s (median 23,714) in batches of 4,000 against 18,345-24,884 (median 20,601) in batches
# of 2,000, four alternating rounds of the tracker as a process, at the same CPU per event.
PROGRESS_BATCH = 4000
# A fetch brings at most this much of a partition: a progress event is about 500 bytes on the
# wire with its headers, so Kafka's default of 1 MiB held about 2,000 of them.
PROGRESS_FETCH_BYTES = 4 * 2**20
# Progress events folded ahead between turns of the event loop (the fold's share of the work a
# decode slice does: see DECODE_SLICE).
FOLD_SLICE = 50
NEW_JOB = JobPosition()  # where a job's row stands before its first progress event
log = logging.getLogger(__name__)
# Fault injection for the stall test: hold each progress transaction open, so a test can freeze
# the process inside one.
_HOLD_IN_TRANSACTION_S = float(os.environ.get("LORAG_FAULT_HOLD_IN_PROGRESS_TXN_S", "0"))


@asynccontextmanager
async def projection(runtime: Runtime) -> AsyncIterator[AsyncConnection[Any]]:
    """A tracker transaction that Postgres ends if it is left idle (its process frozen)."""
    idle_ms = runtime.settings.postgres.tracker_idle_in_transaction_ms
    async with runtime.db.connection() as conn:
        with untraced():  # a session setting, not work: no span
            await conn.execute(
                "SELECT set_config('idle_in_transaction_session_timeout', %s, true)",
                (f"{idle_ms}ms",),
            )
        yield conn


async def record_request(runtime: Runtime, event: JobRequested) -> None:
    """A request becomes a QUEUED job (once, however often it is delivered)."""
    with job_context(event.job_id), stage_span("tracker.record_request", job_attributes(event)):
        async with projection(runtime) as conn:
            created = await jobs.record_requested(conn, event, trace_id=current_trace_id())
        if created:
            resolved = event.resolved
            log.info("job queued: %s (requested %s)", resolved.effective, resolved.requested)
            if resolved.deprecation_notice:
                log.warning(resolved.deprecation_notice)
        else:
            log.info("request already recorded; this delivery changes nothing")


class Whereabouts:
    """Where this tracker last left the jobs whose progress it folds, so that it can fold a
    batch ahead, while Postgres still folds the one before (on a 2-core machine the fold's
    Python work waited on Postgres, and Postgres on it). Only a guess: the fold's transaction
    applies the batch folded ahead only if the locked jobs stand where it was folded from.

    Jobs it never saw are guessed where a new job stands; finished jobs are forgotten (their
    late events are folded in their transaction), and all are beyond JOBS_KEPT in flight.
    """

    JOBS_KEPT = 100_000

    def __init__(self) -> None:
        self._at: dict[str, JobPosition] = {}

    def start_of(self, events: list[JobProgress]) -> dict[str, JobPosition]:
        """Where the events' jobs stand, as far as this tracker knows."""
        return {e.job_id: self._at.get(e.job_id, NEW_JOB) for e in events}

    def fold_ahead(self, events: list[JobProgress]) -> jobs.Fold:
        folded = jobs.fold(events, self.start_of(events))
        self.learn(folded)
        return folded

    async def fold_ahead_yielding(self, events: list[JobProgress]) -> jobs.Fold:
        """`fold_ahead` a slice at a time (FOLD_SLICE events), letting the event loop run
        between slices: the batch before goes on with its statements meanwhile."""
        folded = await jobs.fold_yielding(events, self.start_of(events), FOLD_SLICE)
        self.learn(folded)
        return folded

    def learn(self, folded: jobs.Fold) -> None:
        for job_id, position in folded.positions().items():
            if position.state.is_terminal:
                self._at.pop(job_id, None)
            else:
                self._at[job_id] = position
        if len(self._at) > self.JOBS_KEPT:
            self._at.clear()


async def record_progress(
    runtime: Runtime,
    events: list[JobProgress],
    whereabouts: Whereabouts | None = None,
    ahead: jobs.Fold | None = None,
) -> None:
    """Fold a batch of progress events into the jobs in one transaction (three round trips:
    the idle limit with locking the jobs, the fold, the commit). `ahead`: the batch folded
    ahead by `whereabouts`, which learns where the jobs really stood when it guessed wrong."""
    idle_ms = runtime.settings.postgres.tracker_idle_in_transaction_ms
    async with runtime.db.connection() as conn:
        folded = await jobs.apply_progress(
            conn, events, idle_in_transaction_ms=idle_ms, guess=ahead
        )
        if _HOLD_IN_TRANSACTION_S:
            log.warning("holding the progress transaction %.0fs (fault injection)",
                        _HOLD_IN_TRANSACTION_S)  # fmt: skip
            await asyncio.sleep(_HOLD_IN_TRANSACTION_S)
    if folded is None:
        return
    if whereabouts is not None and folded is not ahead:
        whereabouts.learn(folded)
    for job_id, state in folded.ended:
        with job_context(job_id):
            log.info("job finished: %s", state)


async def record_cancel_request(runtime: Runtime, event: JobCancelRequested) -> None:
    """Note the request; the service running the job stops it and reports CANCELLED."""
    with job_context(event.job_id):
        async with projection(runtime) as conn:
            row = await jobs.request_cancel(conn, event.job_id, event.reason)
        log.info("cancel requested (%s): %s", event.reason, "noted" if row else "no such job")


def register_job_tracker(host: ServiceHost) -> None:
    """Subscribe this process to the tracker's consumer groups."""
    runtime = host.runtime
    requests, progress, cancels = (
        host.delivery(f"{TRACKER_GROUP}.{name}") for name in ("requested", "progress", "cancel")
    )

    @host.at_least_once(JOB_REQUESTED, requests)
    async def on_job_requested(message: KafkaMessage) -> None:
        """At least once; idempotent by job id."""
        (record,) = records_of(message)
        await requests.one(record, JobRequested, lambda e: record_request(runtime, e))

    whereabouts = Whereabouts()

    async def fold_ahead(events: list[JobProgress]) -> Callable[[], Awaitable[None]]:
        folded = await whereabouts.fold_ahead_yielding(events)
        return lambda: record_progress(runtime, events, whereabouts, folded)

    @host.at_least_once(
        JOB_PROGRESS,
        progress,
        batch_size=PROGRESS_BATCH,
        fetch_bytes=PROGRESS_FETCH_BYTES,
        pipelined=True,
    )
    async def on_job_progress(message: KafkaMessage) -> None:
        """At least once, in batches (each fetched, decoded and folded ahead while the one
        before is folded in Postgres); idempotent by (job id, sequence)."""
        await progress.pipelined_batch(
            message, JobProgress, lambda es: record_progress(runtime, es, whereabouts), fold_ahead
        )

    @host.at_least_once(JOB_CANCEL, cancels)
    async def on_job_cancel(message: KafkaMessage) -> None:
        """At least once; idempotent (the first request's time and reason are kept)."""
        (record,) = records_of(message)
        await cancels.one(record, JobCancelRequested, lambda e: record_cancel_request(runtime, e))
