"""Waiting for a job to end as lorag's own clients do: on the job tracker's notifications.

The tracker NOTIFYs each job it moves on, and `lorag_core.db.changes.JobChanges` wakes whoever
waits on it. A bench that polled the jobs table every 20 ms put about 50 queries a second, its
own and Postgres's work, on the two cores the measured job runs on; listening puts none, and the
clock stops when the job's end is told, not at the next poll. Entering waits until the LISTEN is
in place, so a job requested after it cannot end unheard; each wait also rereads the job's row
once a second, so a lost notice costs a second, never the run.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg.rows import dict_row

from lorag_core.db.changes import JobChanges
from lorag_core.domain.job_state import JobState

RECHECK_S = 1.0
LISTEN_TIMEOUT_S = 30.0


class JobEnds:
    """Enter it before the job is requested (its LISTEN is then in place); `ended` waits."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._changes = JobChanges(dsn)
        self._query: psycopg.AsyncConnection[dict[str, Any]] | None = None

    async def __aenter__(self) -> Self:
        self._changes.start()
        try:
            async with asyncio.timeout(LISTEN_TIMEOUT_S):
                await self._changes.listening.wait()
            self._query = await psycopg.AsyncConnection.connect(
                self.dsn, autocommit=True, row_factory=dict_row
            )
        except BaseException:
            await self._changes.stop()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._changes.stop()
        if self._query is not None:
            await self._query.close()

    @property
    def query(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        """A connection for the caller's own reads (dict rows)."""
        assert self._query is not None, "use JobEnds in `async with`"
        return self._query

    async def ended(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The job's row (state, result, error) once its state is final."""
        deadline = time.perf_counter() + timeout
        while True:
            # Waiting before the row is read: an end told while it is read still wakes this.
            left = deadline - time.perf_counter()
            woken = asyncio.create_task(
                self._changes.wait([job_id], timeout=max(min(RECHECK_S, left), 0), ended=True)
            )
            await asyncio.sleep(0)  # the task has registered its waiter
            cur = await self.query.execute(
                "SELECT state, result, error FROM jobs WHERE job_id = %s", (job_id,)
            )
            row = await cur.fetchone()
            if row is not None and JobState(row["state"]).is_terminal:
                woken.cancel()
                return row
            if left <= 0:
                woken.cancel()
                raise TimeoutError(f"bench job {job_id} not ended in {timeout} s: {row}")
            await woken
