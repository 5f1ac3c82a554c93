"""Running jobs durably: accept from Kafka into Postgres, claim with a lease, report progress.

A service that does work calls `register_worker(host, owned, run)`. Its intake stores each job
before the Kafka message is acknowledged; worker loops claim stored jobs with a lease they renew
while the job runs, so a job whose process died is taken over by the next worker after the lease
runs out (its `attempt` is then above 1: the runner resumes from its checkpoints). Progress goes to
`job.progress` with a sequence number kept in Postgres, so it never repeats across restarts.

Each claim is an attempt, and the job's record names the instance that claimed it (`worker`).
A job claimed more than `LORAG_WORKER_MAX_ATTEMPTS` times (its worker died each time: an OOM kill,
say) ends FAILED with ATTEMPTS_EXHAUSTED instead of being claimed forever. A graceful stop gives
the job back without counting the attempt. A job that hit infrastructure down for a moment
(Postgres, object storage, Kafka or a service unreachable) is not failed: it is held for a
backoff that grows with its attempts, then the next claim, a counted attempt, runs it again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from urllib3.exceptions import HTTPError as StorageTransportError

from lorag_core.contracts import JobError, JobProgress, JobRequested, JobResult
from lorag_core.db import work
from lorag_core.domain.datasets import job_refusal
from lorag_core.domain.job_state import JobState
from lorag_core.domain.training_types import TrainingType
from lorag_core.messaging.broker import publish_event
from lorag_core.metrics import JOB_DURATION, JOBS_FINISHED, JOBS_STARTED
from lorag_core.service.host import Runtime, ServiceHost
from lorag_core.service.intake import register_intake
from lorag_core.settings import WorkerSettings
from lorag_core.storage import StorageUnavailable
from lorag_core.telemetry import job_context, job_span

log = logging.getLogger(__name__)
REPORT_INTERVAL_S = 0.25  # progress a few times a second at most
CANCEL_POLL_S = 1.0
RELEASE_TIMEOUT_S = 5.0
ATTEMPTS_EXHAUSTED = "ATTEMPTS_EXHAUSTED"
TRANSIENT_BACKOFF_S, TRANSIENT_BACKOFF_MAX_S = 5.0, 60.0  # times the attempt, capped
# Infrastructure down for a moment: a later attempt can succeed where this one could not.
TRANSIENT = (
    psycopg.OperationalError, StorageUnavailable, StorageTransportError, ConnectionError,
    KafkaConnectionError, KafkaTimeoutError,
)  # fmt: skip


class JobFailed(Exception):
    """Raise from a runner to end the job FAILED with a code and a message for people."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.retryable = code, message, retryable


class JobCancelled(Exception):
    """Raised by `JobContext.check_cancelled` once someone asked to cancel the job."""


class JobContext:
    """What a runner gets: the request, the runtime, progress reporting and cancellation."""

    def __init__(
        self, runtime: Runtime, request: JobRequested, attempt: int, worker: str = ""
    ) -> None:
        self.runtime, self.request, self.attempt = runtime, request, attempt
        self.worker = worker or runtime.settings.instance_id  # the instance running it
        self.job_id = request.job_id
        self.cancelled = asyncio.Event()
        self._last_report = 0.0
        self._state = JobState.QUEUED
        # One report at a time: a report scheduled from a training thread and the runner's next
        # one would otherwise race, and the later-stamped event could take the lower seq.
        self._publishing = asyncio.Lock()

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
        async with self._publishing:
            async with self.runtime.db.connection() as conn:
                seq = await work.take_seq(conn, self.runtime.service, self.job_id)
            event = JobProgress(
                job_id=self.job_id, seq=seq, producer=self.runtime.service, **fields
            )
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
    host.works = True
    worker = _Worker(host.settings.instance_id, host.settings.worker)
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
            tasks.append(asyncio.create_task(_loop(runtime, run, worker, wake)))
        log.info(
            "worker %s claiming %s jobs: %d at a time, lease %.0f s, at most %d attempts",
            worker.instance_id, service, concurrency, worker.lease_s, worker.max_attempts,
        )  # fmt: skip

    async def stop(runtime: Runtime) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    host.after_start(start)
    # Before the broker closes: a job stopped while it reports would otherwise crash on the
    # closed producer and keep its lease, instead of being queued again for another worker.
    host.before_broker_stops(stop)


async def wait_woken(wake: asyncio.Event, timeout: float) -> bool:
    """Wait until `wake` is set (True) or `timeout` seconds pass (False).

    Not `asyncio.wait_for`: on Python 3.11 it returns the result, and drops the cancellation,
    when its task is cancelled just as the awaited thing finishes. A worker loop stopped just as
    the intake woke it then went on claiming jobs for good: its service never stopped, and kept
    running other tests' jobs in CI. `asyncio.timeout` cancels the wait itself and keeps an outer
    cancellation.
    """
    try:
        async with asyncio.timeout(timeout):
            await wake.wait()
    except TimeoutError:
        return False
    return True


class _Worker:
    """Who claims (the instance's name) and under which rules (lease, attempt cap)."""

    def __init__(self, instance_id: str, settings: WorkerSettings) -> None:
        self.instance_id = instance_id
        self.lease_s, self.max_attempts = settings.lease_s, settings.max_attempts

    def lease_owner(self) -> str:
        """Unique to one loop of one process, however the instance is named."""
        return f"{self.instance_id}#{uuid.uuid4().hex[:8]}"


async def _loop(runtime: Runtime, run: Runner, worker: _Worker, wake: asyncio.Event) -> None:
    owner = worker.lease_owner()
    while True:
        try:
            async with runtime.db.connection() as conn:
                item = await work.claim(
                    conn, runtime.service, worker.instance_id, owner, worker.lease_s
                )
                exhausted = item is not None and item["attempts"] > worker.max_attempts
                if item is not None and not exhausted:
                    await work.record_worker(conn, item["job_id"], worker.instance_id)
            if item is None:
                wake.clear()
                # Woken by the intake, or every few seconds to take over expired leases.
                await wait_woken(wake, min(5.0, worker.lease_s / 2))
                continue
            request = JobRequested.model_validate(item["request"])
            # The run continues the trace of the request it came from, on every attempt.
            with (
                job_context(request.job_id),
                job_span(
                    f"{runtime.service} job", request, traceparent=item["traceparent"],
                    **{"lorag.attempt": item["attempts"], "lorag.worker": worker.instance_id},
                ),
            ):  # fmt: skip
                if exhausted:
                    await _give_up(runtime, request, item["workers"], worker.max_attempts)
                else:
                    log.info("claimed by %s (attempt %d)", worker.instance_id, item["attempts"])
                    ctx = JobContext(runtime, request, item["attempts"], worker.instance_id)
                    await _run_one(ctx, run, owner, worker.lease_s)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker loop error; retrying in 1 s")
            await asyncio.sleep(1.0)


async def _give_up(
    runtime: Runtime, request: JobRequested, workers: Sequence[str], max_attempts: int
) -> None:
    """End a job whose worker died on every attempt: FAILED, and never claimed again."""
    ran_on = ", ".join(workers[:max_attempts]) or "unknown instances"
    message = (
        f"the job was started {max_attempts} times and each time its worker died or was killed "
        "before the job ended, or found Postgres, object storage or Kafka unreachable (its lease "
        f"ran out with no outcome); it ran on {ran_on}. Check the "
        "service's memory limit first (an OOM kill ends a process without a log line: Kubernetes "
        "shows OOMKilled in `kubectl describe pod`, Linux logs it in `dmesg`), then those "
        "instances' logs around this job id. Resubmit with a smaller dataset or batch, or more "
        f"memory; LORAG_WORKER_MAX_ATTEMPTS (now {max_attempts}) sets the cap."
    )
    log.error("giving up after %d attempts: %s", max_attempts, message)
    ctx = JobContext(runtime, request, max_attempts + 1)
    error = JobError(code=ATTEMPTS_EXHAUSTED, message=message[:4000], retryable=False)
    await ctx._publish(state=JobState.FAILED, error=error)
    async with runtime.db.connection() as conn:
        await work.finish(conn, runtime.service, request.job_id, JobState.FAILED.value)


async def _run_one(ctx: JobContext, run: Runner, owner: str, lease_s: float) -> None:
    runtime, request = ctx.runtime, ctx.request
    if ctx.attempt > 1:
        log.warning("resuming after a crash (attempt %d)", ctx.attempt)
    training_type = request.resolved.effective.value
    JOBS_STARTED.labels(runtime.service, training_type).inc()
    started = time.monotonic()
    work_task = asyncio.create_task(_run_job(ctx, run))
    keeper = asyncio.create_task(_keep_lease(ctx, owner, lease_s, work_task))
    try:
        outcome = await work_task
        if outcome is None:  # transient: the next claim, after a backoff, runs it again
            await _retry_later(ctx, owner)
            return
    except asyncio.CancelledError:
        if keeper.done() and keeper.result() is False:
            log.error("lost the lease (another worker took the job over); stopped here")
            return
        if work_task.done():  # a graceful stop: hand the job on at once, the attempt uncounted
            await _release(runtime, request.job_id, owner)
        raise
    finally:
        keeper.cancel()
    async with runtime.db.connection() as conn:
        await work.finish(conn, runtime.service, request.job_id, outcome.value)
    JOBS_FINISHED.labels(runtime.service, training_type, outcome.value).inc()
    JOB_DURATION.labels(runtime.service, training_type, outcome.value).observe(
        time.monotonic() - started
    )
    log.info("job ended %s", outcome)


async def _retry_later(ctx: JobContext, owner: str) -> None:
    """Hold the lease for a backoff that grows with the attempts, so an outage of a minute
    costs a few attempts, not one per lease; if Postgres is the thing down, the lease as it is
    runs out instead."""
    backoff = min(TRANSIENT_BACKOFF_S * ctx.attempt, TRANSIENT_BACKOFF_MAX_S)
    try:
        async with asyncio.timeout(RELEASE_TIMEOUT_S):
            async with ctx.runtime.db.connection() as conn:
                await work.renew(conn, ctx.runtime.service, ctx.job_id, owner, backoff)
    except Exception:
        log.warning("could not hold the job for its backoff; it is retried once its lease ends")
        return
    log.warning("attempt %d left to the next one, in %.0f s", ctx.attempt, backoff)


async def _release(runtime: Runtime, job_id: str, owner: str) -> None:
    try:
        async with asyncio.timeout(RELEASE_TIMEOUT_S):
            async with runtime.db.connection() as conn:
                if await work.release(conn, runtime.service, job_id, owner):
                    log.info("stopping: the job is queued again for another worker")
    except Exception:  # the lease then runs out as after a crash, and the attempt counts
        log.exception("could not give the job back on stop")


def _injected_fault(job_id: str) -> None:
    """Fault injection for saga tests: fail matching jobs with a retryable error."""
    pattern = os.environ.get("LORAG_FAULT_FAIL_JOBS")
    if pattern and re.fullmatch(pattern, job_id):
        raise JobFailed("FAULT_INJECTED", f"LORAG_FAULT_FAIL_JOBS matched {job_id}", retryable=True)


def transient(exc: BaseException) -> bool:
    """Whether the failure (or one it came from) is infrastructure down for a moment."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain of causes, not a cycle
        if seen is None:
            return False
        if isinstance(seen, TRANSIENT):
            return True
        if getattr(seen, "status", None) == 503:  # a service's client error: it is not up yet
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def _run_job(ctx: JobContext, run: Runner) -> JobState | None:
    """Run the job and publish how it ended; returns that state, or None when the job hit
    infrastructure down for a moment and must run again on its next attempt."""
    try:
        async with ctx.runtime.db.connection() as conn:
            if await work.cancel_requested(conn, ctx.job_id):  # asked while it waited its turn
                ctx.cancelled.set()
        await ctx.check_cancelled()
        # The first event of every run says where it runs: the log shows each attempt once.
        await ctx.report(
            JobState.VALIDATING, stage="validating", percent=0.0, force=True,
            message=f"attempt {ctx.attempt} on {ctx.worker}",
        )  # fmt: skip
        _injected_fault(ctx.job_id)
        if (refused := job_refusal(ctx.request)) is not None:  # another bucket, owner's upload
            raise JobFailed(*refused)
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
        if transient(exc):
            log.warning("attempt %d hit unreachable infrastructure: %r", ctx.attempt, exc)
            return None
        log.exception("job crashed")
        error = JobError(
            code="INTERNAL_ERROR", message=f"{type(exc).__name__}: {exc}"[:4000], retryable=True
        )
    await ctx._publish(state=JobState.FAILED, error=error)
    return JobState.FAILED


async def _keep_lease(
    ctx: JobContext, owner: str, lease_s: float, work_task: asyncio.Task[JobState | None]
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
