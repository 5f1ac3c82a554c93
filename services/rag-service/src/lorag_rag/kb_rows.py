"""The registry rows of live knowledge bases, cached for queries while Postgres tells of changes.

A query needs its KB's row (owner, model, live version): reading it from Postgres was a pool
checkout and a round trip per query. A trigger announces every change to a KB's row on
`rag_kb_changed` (a committed version, a drop, whoever makes it), and this cache drops that
entry when the notice comes. It caches only while its listening connection is up: before
LISTEN answers, and from a lost connection until LISTEN answers again, every lookup reads
Postgres. A lookup that read Postgres while a notice came in does not cache what it read (it
may predate the change). The service's own commit drops its entry at once, without waiting
for the notice; a change made elsewhere is seen once its notice arrives, milliseconds after
that change's COMMIT has returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from lorag_rag.adapters import registry

log = logging.getLogger(__name__)
CHANNEL = "rag_kb_changed"
RETRY_S = 1.0
Row = dict[str, Any]


class KbRows:
    """Rows of live KBs by name; `get` reads through, `listen` keeps the entries true."""

    def __init__(self) -> None:
        self._rows: dict[str, Row] = {}
        self._changes = 0  # notices seen: a read that overlapped one is not cached
        self._listening = False

    async def get(self, pool: AsyncConnectionPool, kb: str) -> Row | None:
        """The KB's row (None if there is none), from the cache while it is kept true."""
        if self._listening and (row := self._rows.get(kb)) is not None:
            return row
        changes, listening = self._changes, self._listening
        async with pool.connection() as conn:
            row = await registry.get(conn, kb)
        kept_true = listening and self._listening and changes == self._changes
        if kept_true and row is not None and row["version"] > 0:
            self._rows[kb] = row
        return row

    def forget(self, kb: str | None = None) -> None:
        """Drop one KB's entry (or all), and keep reads in flight from caching theirs."""
        self._changes += 1
        if kb is None:
            self._rows.clear()
        else:
            self._rows.pop(kb, None)

    async def listen(self, dsn: str) -> None:
        """Follow the change notices until cancelled; reconnect after a lost connection."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    dsn, autocommit=True, row_factory=dict_row
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.forget()  # whatever changed while nobody listened
                    self._listening = True
                    async for notice in conn.notifies():
                        self.forget(notice.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("KB change notices lost (%s); queries read Postgres meanwhile", exc)
            finally:
                self._listening = False
                self.forget()
            await asyncio.sleep(RETRY_S)


async def stop_listening(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
