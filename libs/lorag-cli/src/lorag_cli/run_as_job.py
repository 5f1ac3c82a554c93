"""Report a long operation of the CLI (a legacy conversion) as a job of its own on `job.progress`,
so `lorag jobs ls | show` follow it like any other job."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from lorag_core.contracts import JobError, JobProgress, JobResult
from lorag_core.domain.job_state import JobState
from lorag_core.messaging.broker import make_broker, publish_event
from lorag_core.settings import Settings

REPORT_EVERY_S = 0.5


class JobReporter:
    """Publishes RUNNING progress a few times a second from a thread, then the outcome."""

    def __init__(self, settings: Settings, job_id: str, stage: str) -> None:
        self.job_id, self.stage = job_id, stage
        self.total, self.done, self.seq = 0, 0, 0
        self._started = time.monotonic()
        self._last = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._broker = make_broker(settings.kafka, client_id="lorag-cli")
        self._call(self._broker.connect())

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def _send(self, **fields: Any) -> None:
        self.seq += 1
        event = JobProgress(job_id=self.job_id, seq=self.seq, producer="lorag-cli", **fields)
        self._call(publish_event(self._broker, event))

    def start(self, total: int) -> None:
        self.total = total
        self._send(state=JobState.RUNNING, stage=self.stage, percent=0.0, message=f"{total} rows")

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if now - self._last < REPORT_EVERY_S:
            return
        self._last = now
        rate = self.done / max(now - self._started, 1e-6)
        percent = 100.0 * self.done / self.total if self.total else 100.0
        eta = (self.total - self.done) / rate if rate else None
        self._send(state=JobState.RUNNING, stage=self.stage, percent=min(percent, 100.0),
                   eta_seconds=eta, metrics={"rows_per_s": rate})  # fmt: skip

    def succeed(self, summary: dict[str, Any]) -> None:
        self._send(state=JobState.SUCCEEDED, stage=self.stage, percent=100.0,
                   result=JobResult(summary=summary))  # fmt: skip

    def fail(self, message: str) -> None:
        self._send(state=JobState.FAILED, stage=self.stage,
                   error=JobError(code="MIGRATION_FAILED", message=message[:4000]))  # fmt: skip

    def close(self) -> None:
        self._call(self._broker.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
