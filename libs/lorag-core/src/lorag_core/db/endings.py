"""Waiting for jobs to end without polling: the job tracker NOTIFYs each job it sees end.

One LISTEN connection per process fans the notifications out to whoever waits on those jobs.
A missed notification (the connection dropped) costs at most the waiter's timeout: waiters read
the job rows themselves after every wake-up, so a notification is only ever a hint.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable

import psycopg

log = logging.getLogger(__name__)
CHANNEL = "lorag_job_ended"
RECONNECT_S = 1.0


class JobEndings:
    """Wakes waiters when one of their jobs ends."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="job-endings")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def wait(self, job_ids: Iterable[str], timeout: float) -> bool:
        """Return when one of the jobs ended (True) or after `timeout` seconds (False)."""
        woken, ids = asyncio.Event(), list(job_ids)
        for job_id in ids:
            self._waiters[job_id].add(woken)
        try:
            await asyncio.wait_for(woken.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            for job_id in ids:
                self._waiters[job_id].discard(woken)
                if not self._waiters[job_id]:
                    del self._waiters[job_id]

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    async for notify in conn.notifies():
                        for woken in self._waiters.get(notify.payload, ()):
                            woken.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # waiters fall back on their timeouts meanwhile
                log.warning("job endings: %s; listening again in %.0f s", exc, RECONNECT_S)
                await asyncio.sleep(RECONNECT_S)
