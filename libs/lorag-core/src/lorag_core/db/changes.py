"""Waiting for jobs to change without polling: the job tracker NOTIFYs each job it moves on.

One LISTEN connection per process fans the notifications out to whoever waits on those jobs.
A missed notification (the connection dropped) costs at most the waiter's timeout: waiters read
the job rows themselves after every wake-up, so a notification is only ever a hint.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from lorag_core.domain.job_state import JobState

log = logging.getLogger(__name__)
CHANNEL = "lorag_job_changed"  # payload: "<state> <job id>"
RECONNECT_S = 1.0


@dataclass(eq=False)
class _Waiter:
    woken: asyncio.Event
    ended_only: bool


class JobChanges:
    """Wakes waiters when one of their jobs changes (or, if they ask, ends).

    `listening` is set while the LISTEN is in place: a caller that will cause a change and must
    not miss its notification (a client publishing a request) awaits it first.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._waiters: dict[str, set[_Waiter]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="job-changes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def wait(self, job_ids: Iterable[str], timeout: float, *, ended: bool = False) -> bool:
        """Return True when one of the jobs changed (with `ended`: reached a final state),
        False after `timeout` seconds without that."""
        waiter, ids = _Waiter(asyncio.Event(), ended), list(job_ids)
        for job_id in ids:
            self._waiters[job_id].add(waiter)
        try:
            async with asyncio.timeout(timeout):  # not wait_for: it can drop a cancellation
                await waiter.woken.wait()
            return True
        except TimeoutError:
            return False
        finally:
            for job_id in ids:
                self._waiters[job_id].discard(waiter)
                if not self._waiters[job_id]:
                    del self._waiters[job_id]

    def _wake(self, payload: str) -> None:
        state, _, job_id = payload.partition(" ")
        ended = state in JobState.__members__ and JobState[state].is_terminal
        for waiter in self._waiters.get(job_id, ()):
            if ended or not waiter.ended_only:
                waiter.woken.set()

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    async for notify in conn.notifies():
                        self._wake(notify.payload)
            except asyncio.CancelledError:
                self.listening.clear()
                raise
            except Exception as exc:  # waiters fall back on their timeouts meanwhile
                self.listening.clear()
                log.warning("job changes: %s; listening again in %.0f s", exc, RECONNECT_S)
                await asyncio.sleep(RECONNECT_S)
