"""Live job progress: one reader per watched job, fanning each change out to every watcher.

A reader reads the job row and its new progress-log rows when the job tracker announces a change
(Postgres NOTIFY, see lorag_core.db.changes), and every `poll_s` in case a notice was missed;
watchers that join late first receive what the reader already saw, so every watcher sees the
whole story.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool

from lorag_core.db import jobs as store
from lorag_core.db.changes import JobChanges
from lorag_core.domain.job_state import JobState

log = logging.getLogger(__name__)
Message = dict[str, Any]  # {"event": "job" | "progress" | "end", "data": {...}}
NEW_PROGRESS = (
    "SELECT seq, state, verdict, producer, stage, percent, eta_seconds, metrics, message, result,"
    " error, occurred_at FROM job_progress WHERE job_id = %s AND seq > %s ORDER BY seq"
)
SNAPSHOT = ("job_id", "state", "stage", "percent", "eta_seconds", "metrics", "message", "result",
            "error", "effective_type", "last_seq", "updated_at")  # fmt: skip


@dataclass
class Feed:
    job_id: str
    seen: list[Message] = field(default_factory=list)
    queues: set[asyncio.Queue[Message]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None

    def send(self, message: Message) -> None:
        self.seen.append(message)
        for queue in self.queues:
            queue.put_nowait(message)


class JobWatchers:
    """Fans job changes out to watchers; a job's poller runs while someone watches it."""

    def __init__(self, db: AsyncConnectionPool, changes: JobChanges, poll_s: float) -> None:
        self.db, self.changes, self.poll_s = db, changes, poll_s
        self.feeds: dict[str, Feed] = {}

    async def watch(self, job_id: str) -> AsyncIterator[Message]:
        """The job's changes until it ends: replayed ones first, then live ones."""
        feed = self.feeds.get(job_id)
        if feed is None:
            feed = self.feeds[job_id] = Feed(job_id)
            feed.task = asyncio.create_task(self._poll(feed), name=f"watch-{job_id}")
        queue: asyncio.Queue[Message] = asyncio.Queue()
        backlog = list(feed.seen)
        feed.queues.add(queue)
        try:
            for message in backlog:
                yield message
                if message["event"] == "end":
                    return
            while True:
                message = await queue.get()
                yield message
                if message["event"] == "end":
                    return
        finally:
            feed.queues.discard(queue)
            if not feed.queues and self.feeds.get(job_id) is feed:
                del self.feeds[job_id]
                if feed.task is not None:
                    feed.task.cancel()

    async def _poll(self, feed: Feed) -> None:
        cursor, last = -1, (None, None)
        while True:
            try:
                async with self.db.connection() as conn:
                    job = await store.get_job(conn, feed.job_id)
                    cur = await conn.execute(NEW_PROGRESS, (feed.job_id, cursor))
                    rows: list[dict[str, Any]] = await cur.fetchall()  # type: ignore[assignment]
            except Exception:  # a database hiccup must not end every watcher's stream
                log.exception("reading job %s failed; retrying", feed.job_id)
                await asyncio.sleep(self.poll_s)
                continue
            for row in rows:
                cursor = row["seq"]
                feed.send({"event": "progress", "data": row})
            if job is not None and (job["last_seq"], job["updated_at"]) != last:
                last = job["last_seq"], job["updated_at"]
                feed.send({"event": "job", "data": {k: job.get(k) for k in SNAPSHOT}})
                if JobState(job["state"]).is_terminal:
                    feed.send({"event": "end", "data": {"state": job["state"]}})
                    return
            await self.changes.wait([feed.job_id], self.poll_s)

    async def close(self) -> None:
        await self.changes.stop()
        for feed in list(self.feeds.values()):
            if feed.task is not None:
                feed.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feed.task
