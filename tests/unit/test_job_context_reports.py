"""Two reports of one job at once (a training thread's and the runner's next) keep seq and time
in the same order: the drill's "progress seq only grows" caught a later event with a lower seq."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

from lorag_core.contracts import JobProgress
from lorag_core.domain.job_state import JobState
from lorag_core.service import worker


class FakeDb:
    """Hands out seqs in call order; the first caller is held longer, as a busy pool can."""

    def __init__(self) -> None:
        self.next_seq, self.calls = 1, 0

    @contextlib.asynccontextmanager
    async def connection(self) -> Any:
        yield self


async def test_concurrent_reports_publish_in_seq_order_with_time_in_step(monkeypatch):
    db, published = FakeDb(), []

    async def take_seq(conn: FakeDb, service: str, job_id: str) -> int:
        conn.calls += 1
        seq, conn.next_seq = conn.next_seq, conn.next_seq + 1
        await asyncio.sleep(0.05 if conn.calls == 1 else 0)  # the first caller resumes last
        return seq

    async def publish_event(broker: Any, event: JobProgress) -> None:
        published.append(event)

    monkeypatch.setattr(worker.work, "take_seq", take_seq)
    monkeypatch.setattr(worker, "publish_event", publish_event)
    runtime = SimpleNamespace(db=db, service="lora-service", broker=None,
                              settings=SimpleNamespace(instance_id="w1"))  # fmt: skip
    request = SimpleNamespace(job_id="job-1")  # reports read only the job id
    ctx = worker.JobContext(runtime, request, attempt=1)  # type: ignore[arg-type]

    await asyncio.gather(
        ctx.report(stage="training", percent=98.0, force=True),
        ctx.report(JobState.RUNNING, stage="storing", percent=99.0, force=True),
    )

    assert [e.seq for e in published] == [1, 2]
    assert published[0].occurred_at <= published[1].occurred_at
