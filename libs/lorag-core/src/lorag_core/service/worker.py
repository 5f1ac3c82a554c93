"""Running jobs durably: accept from Kafka into Postgres, claim with a lease, report progress.

A service that does work calls `register_worker(host, owned, run)`. Its intake stores each job
before the Kafka message is acknowledged; worker loops claim stored jobs with a lease they renew
while the job runs, so a job whose process died is taken over by the next worker after the lease
runs out (its `attempt` is then above 1: the runner resumes from its checkpoints). Progress goes to
`job.progress` with a sequence number kept in Postgres, so it never repeats across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from lorag_core.contracts import JobError, JobProgress, JobRequested, JobResult
from lorag_core.db import work
from lorag_core.domain.job_state import JobState
from lorag_core.domain.training_types import TrainingType
from lorag_core.messaging.broker import publish_event
from lorag_core.service.host import Runtime, ServiceHost
from lorag_core.service.intake import register_intake
from lorag_core.telemetry import job_context

log = logging.getLogger(__name__)
REPORT_INTERVAL_S = 0.25  # progress a few times a second at most
CANCEL_POLL_S = 1.0


class JobFailed(Exception):
    """Raise from a runner to end the job FAILED with a code and a message for people."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.retryable = code, message, retryable


class JobCancelled(Exception):
    """Raised by `JobContext.check_cancelled` once someone asked to cancel the job."""


class JobContext:
    """What a runner gets: the request, the runtime, progress reporting and cancellation."""

    def __init__(self, runtime: Runtime, request: JobRequested, attempt: int) -> None:
        self.runtime, self.request, self.attempt = runtime, request, attempt
        self.job_id = request.job_id
        self.cancelled = asyncio.Event()
        self._last_report = 0.0
        self._state = JobState.QUEUED

    async def report(
        self,
        state: JobState | None = None,
        *,
        stage: str | None = None,
        percent: float | None = None,
        eta_seconds: float | None = None,
        metrics: dict[str, float] | None = None,
        message: str | None = None,
        force: bool = False,
    ) -> None:
        """Publish progress; throttled to a few per second unless the state changes or forced."""
        state = state or self._state
        now = time.monotonic()
        if state == self._state and not force and now - self._last_report < REPORT_INTERVAL_S:
            return
        self._last_report, self._state = now, state
        await self._publish(
            state=state, stage=stage, percent=percent, eta_seconds=eta_seconds,
            metrics=metrics or {}, message=message,
        )  # fmt: skip

    async def check_cancelled(self) -> None:
        """Raise JobCancelled if someone asked to cancel; call it between units of work."""
        if self.cancelled.is_set():
            raise JobCancelled(self.job_id)

    async def _publish(self, **fields: Any) -> None:
        async with self.runtime.db.connection() as conn:
            seq = await work.take_seq(conn, self.runtime.service, self.job_id)
        event = JobProgress(job_id=self.job_id, seq=seq, producer=self.runtime.service, **fields)
        await publish_event(self.runtime.broker, event)


Runner = Callable[[JobContext], Awaitable[JobResult]]


def register_worker(
    host: ServiceHost,
    owned: frozenset[TrainingType],
    run: Runner,
    *,
    stages: frozenset[str] = frozenset(),
    concurrency: int = 1,
) -> None:
    """Accept this service's jobs durably and run them with `run`, `concurrency` at a time."""
    service = host.service
    lease_s = float(os.environ.get("LORAG_WORKER_LEASE_S", "30"))
    wake = asyncio.Event()

    async def accept(runtime: Runtime, event: JobRequested) -> None:
        async with runtime.db.connection() as conn:
            if await work.accept(conn, service, event):
                log.info("accepted %s job", event.resolved.effective)
        wake.set()

    register_intake(host, owned, accept, stages=stages)
    tasks: list[asyncio.Task[None]] = []

    async def start(runtime: Runtime) -> None:
        for _ in range(concurrency):
            tasks.append(asyncio.create_task(_loop(runtime, run, lease_s, wake)))

    async def stop(runtime: Runtime) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    host.after_start(start)
    host.on_stop(stop)


async def _loop(runtime: Runtime, run: Runner, lease_s: float, wake: asyncio.Event) -> None:
    owner = f"{runtime.service}-{uuid.uuid4().hex[:8]}"
    while True:
        try:
            async with runtime.db.connection() as conn:
                item = await work.claim(conn, runtime.service, owner, lease_s)
            if item is None:
                wake.clear()
                # Woken by the intake, or every few seconds to take over expired leases.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=min(5.0, lease_s / 2))
                continue
            request = JobRequested.model_validate(item["request"])
            with job_context(request.job_id):
                await _run_one(runtime, run, request, item["attempts"], owner, lease_s)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker loop error; retrying in 1 s")
            await asyncio.sleep(1.0)


async def _run_one(
    runtime: Runtime, run: Runner, request: JobRequested, attempt: int, owner: str, lease_s: float
) -> None:
    ctx = JobContext(runtime, request, attempt)
    if attempt > 1:
        log.warning("resuming after a crash (attempt %d)", attempt)
    work_task = asyncio.create_task(_run_job(ctx, run))
    keeper = asyncio.create_task(_keep_lease(ctx, owner, lease_s, work_task))
    try:
        outcome = await work_task
    except asyncio.CancelledError:
        if keeper.done() and keeper.result() is False:
            log.error("lost the lease (another worker took the job over); stopped here")
            return
        raise
    finally:
        keeper.cancel()
    async with runtime.db.connection() as conn:
        await work.finish(conn, runtime.service, request.job_id, outcome.value)
    log.info("job ended %s", outcome)


def _injected_fault(job_id: str) -> None:
    """Fault injection for saga tests: fail matching jobs with a retryable error."""
    pattern = os.environ.get("LORAG_FAULT_FAIL_JOBS")
    if pattern and re.fullmatch(pattern, job_id):
        raise JobFailed("FAULT_INJECTED", f"LORAG_FAULT_FAIL_JOBS matched {job_id}", retryable=True)


async def _run_job(ctx: JobContext, run: Runner) -> JobState:
    """Run the job and publish how it ended; returns that state."""
    try:
        async with ctx.runtime.db.connection() as conn:
            if await work.cancel_requested(conn, ctx.job_id):  # asked while it waited its turn
                ctx.cancelled.set()
        await ctx.check_cancelled()
        await ctx.report(JobState.VALIDATING, stage="validating", percent=0.0, force=True)
        _injected_fault(ctx.job_id)
        result = await run(ctx)
        await ctx._publish(state=JobState.SUCCEEDED, percent=100.0, result=result)
        return JobState.SUCCEEDED
    except JobCancelled:
        await ctx._publish(state=JobState.CANCELLED, message="cancelled on request")
        return JobState.CANCELLED
    except JobFailed as failed:
        error = JobError(
            code=failed.code, message=failed.message[:4000], retryable=failed.retryable
        )
    except Exception as exc:
        log.exception("job crashed")
        error = JobError(
            code="INTERNAL_ERROR", message=f"{type(exc).__name__}: {exc}"[:4000], retryable=True
        )
    await ctx._publish(state=JobState.FAILED, error=error)
    return JobState.FAILED


async def _keep_lease(
    ctx: JobContext, owner: str, lease_s: float, work_task: asyncio.Task[JobState]
) -> bool:
    """Renew the lease and watch for cancellation while the job runs.

    If the lease was lost (this process stalled past it and another worker took the job over),
    stop the job here: two workers must never run one job side by side. Returns False then.
    """
    last_renew = time.monotonic()
    while True:
        await asyncio.sleep(CANCEL_POLL_S)
        async with ctx.runtime.db.connection() as conn:
            if await work.cancel_requested(conn, ctx.job_id):
                ctx.cancelled.set()
            if time.monotonic() - last_renew > lease_s / 3:
                if not await work.renew(conn, ctx.runtime.service, ctx.job_id, owner, lease_s):
                    work_task.cancel()
                    return False
                last_renew = time.monotonic()
