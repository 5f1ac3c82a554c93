"""A conversion run reported as a job of its own on `job.progress`, so `lorag jobs ls | show`
and `lorag migrate` follow it like any other job."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from faststream.kafka import KafkaBroker

from lorag_core.contracts import JobError, JobProgress, JobResult
from lorag_core.domain.job_state import JobState
from lorag_core.messaging.broker import publish_event

REPORT_EVERY_S = 0.5
PRODUCER = "migration-service"
log = logging.getLogger(__name__)


class ConversionStopped(Exception):
    """The service is stopping: the run ends after its last committed batch."""


class JobReporter:
    """The conversion's progress sink: RUNNING a few times a second, then the outcome.

    `start` and `advance` are called from the conversion's worker thread and publish through
    the service's event loop; `succeed` and `fail` are awaited on that loop. `stop()` ends the
    run at the next batch boundary (each batch commits whole, so the next run resumes there).
    """

    def __init__(self, broker: KafkaBroker, job_id: str, stage: str) -> None:
        self.broker, self.job_id, self.stage = broker, job_id, stage
        self.total, self.done, self.seq = 0, 0, 0
        self._loop = asyncio.get_running_loop()
        self._started = time.monotonic()
        self._last = 0.0
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _event(self, **fields: Any) -> JobProgress:
        self.seq += 1
        return JobProgress(job_id=self.job_id, seq=self.seq, producer=PRODUCER, **fields)

    def _send_from_thread(self, **fields: Any) -> None:
        # Progress is for people: a lost report must not stop the conversion it reports on.
        try:
            future = asyncio.run_coroutine_threadsafe(
                publish_event(self.broker, self._event(**fields)), self._loop
            )
            future.result(timeout=30)
        except Exception as exc:
            log.warning("progress of %s not published: %s", self.job_id, exc)

    def start(self, total: int) -> None:
        self.total = total
        self._send_from_thread(state=JobState.RUNNING, stage=self.stage, percent=0.0,
                               message=f"{total} rows")  # fmt: skip

    def advance(self, rows: int) -> None:
        if self._stop.is_set():
            raise ConversionStopped(
                f"stopped with the migration-service after {self.done + rows} rows; "
                "the committed batches stay converted: run `lorag migrate` again to resume"
            )
        self.done += rows
        now = time.monotonic()
        if now - self._last < REPORT_EVERY_S:
            return
        self._last = now
        rate = self.done / max(now - self._started, 1e-6)
        percent = 100.0 * self.done / self.total if self.total else 100.0
        eta = (self.total - self.done) / rate if rate else None
        self._send_from_thread(state=JobState.RUNNING, stage=self.stage,
                               percent=min(percent, 100.0), eta_seconds=eta,
                               metrics={"rows_per_s": rate})  # fmt: skip

    async def succeed(self, summary: dict[str, Any]) -> None:
        await self._send(state=JobState.SUCCEEDED, stage=self.stage, percent=100.0,
                         result=JobResult(summary=summary))  # fmt: skip

    async def fail(self, message: str) -> None:
        error = JobError(code="MIGRATION_FAILED", message=message[:4000])
        await self._send(state=JobState.FAILED, stage=self.stage, error=error)

    async def _send(self, **fields: Any) -> None:
        # At shutdown the broker closes before the service's stop hooks run: the outcome is then
        # logged only, and the conversion's own records in Postgres still say what was done.
        try:
            await publish_event(self.broker, self._event(**fields))
        except Exception as exc:
            log.warning("outcome of %s not published: %s", self.job_id, exc)
