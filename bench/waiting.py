"""Waiting for a job to end as lorag's own clients do: on the job tracker's notifications.

The tracker NOTIFYs each job it moves on (`lorag_core.db.changes`). A bench that polled the jobs
table every 20 ms put about 50 queries a second, its own and Postgres's work, on the two cores the
measured job runs on; listening puts none, and the clock stops when the job's end is told, not at
the next poll. The listening connection only listens (a connection running a query may drop a
notice), and the job's row is read on a second one; each wait also rereads the row once a second,
so a lost notice costs a second, never the run.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg.rows import dict_row

from lorag_core.db.changes import CHANNEL
from lorag_core.domain.job_state import JobState

RECHECK_S = 1.0


class JobEnds:
    """Enter it before the job is requested (its LISTEN is then in place); `ended` waits."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._listen: psycopg.AsyncConnection[Any] | None = None
        self._query: psycopg.AsyncConnection[dict[str, Any]] | None = None

    async def __aenter__(self) -> Self:
        self._listen = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        await self._listen.execute(f"LISTEN {CHANNEL}")
        self._query = await psycopg.AsyncConnection.connect(
            self.dsn, autocommit=True, row_factory=dict_row
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for conn in (self._listen, self._query):
            if conn is not None:
                await conn.close()

    @property
    def query(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        """A connection for the caller's own reads (dict rows)."""
        assert self._query is not None, "use JobEnds in `async with`"
        return self._query

    async def ended(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The job's row (state, result, error) once its state is final."""
        assert self._listen is not None, "use JobEnds in `async with`"
        deadline = time.perf_counter() + timeout
        while True:
            cur = await self.query.execute(
                "SELECT state, result, error FROM jobs WHERE job_id = %s", (job_id,)
            )
            row = await cur.fetchone()
            if row is not None and JobState(row["state"]).is_terminal:
                return row
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"bench job {job_id} not ended in {timeout} s: {row}")
            async for notice in self._listen.notifies(timeout=min(RECHECK_S, left)):
                state, _, about = notice.payload.partition(" ")
                if about == job_id and JobState(state).is_terminal:
                    break
