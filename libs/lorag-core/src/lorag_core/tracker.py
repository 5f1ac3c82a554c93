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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from faststream.kafka.annotations import KafkaMessage
from psycopg import AsyncConnection

from lorag_core.contracts import JobCancelRequested, JobProgress, JobRequested
from lorag_core.db import jobs
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
PROGRESS_BATCH = 2000
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


async def record_progress(runtime: Runtime, events: list[JobProgress]) -> None:
    """Fold a batch of progress events into the jobs in one transaction (three round trips:
    the idle limit with locking the jobs, the fold, the commit)."""
    idle_ms = runtime.settings.postgres.tracker_idle_in_transaction_ms
    async with runtime.db.connection() as conn:
        ended = await jobs.apply_progress(conn, events, idle_in_transaction_ms=idle_ms)
        if _HOLD_IN_TRANSACTION_S:
            log.warning("holding the progress transaction %.0fs (fault injection)",
                        _HOLD_IN_TRANSACTION_S)  # fmt: skip
            await asyncio.sleep(_HOLD_IN_TRANSACTION_S)
    for job_id, state in ended:
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

    @host.at_least_once(JOB_PROGRESS, progress, batch_size=PROGRESS_BATCH, pipelined=True)
    async def on_job_progress(message: KafkaMessage) -> None:
        """At least once, in batches (each folded while the next is fetched and decoded);
        idempotent by (job id, sequence)."""
        await progress.pipelined_batch(
            message, JobProgress, lambda es: record_progress(runtime, es)
        )

    @host.at_least_once(JOB_CANCEL, cancels)
    async def on_job_cancel(message: KafkaMessage) -> None:
        """At least once; idempotent (the first request's time and reason are kept)."""
        (record,) = records_of(message)
        await cancels.one(record, JobCancelRequested, lambda e: record_cancel_request(runtime, e))
