"""Waiting on the job store, for tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from psycopg.rows import dict_row


async def wait_for_job(
    dsn: str, job_id: str, *, state: str | None = None, timeout: float = 30
) -> dict[str, Any]:
    """Poll until the job exists (in the given state, if one is given); fail with what was seen."""
    deadline = time.monotonic() + timeout
    seen = None
    async with await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, row_factory=dict_row
    ) as conn:
        while time.monotonic() < deadline:
            cur = await conn.execute("SELECT * FROM jobs WHERE job_id = %s", (job_id,))
            seen = await cur.fetchone()
            if (
                seen is not None
                and seen["request"] is not None
                and (state is None or seen["state"] == state)
            ):
                return seen
            await asyncio.sleep(0.05)
    raise AssertionError(
        f"job {job_id} not {state or 'recorded'} within {timeout}s; last seen: {seen}"
    )


async def fetch_all(dsn: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, row_factory=dict_row
    ) as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall()
