"""Undoing an ingest a saga no longer wants: the knowledge base it created goes away."""

from __future__ import annotations

import asyncio
import logging

from lorag_core.contracts import CompensationRequested
from lorag_core.service.compensation import Undo
from lorag_core.service.host import Runtime
from lorag_rag.adapters import registry
from lorag_rag.handlers import DepsProvider

log = logging.getLogger(__name__)


def make_undo(provider: DepsProvider) -> Undo:
    async def undo(runtime: Runtime, event: CompensationRequested) -> None:
        """Drop the KB when this job created it (version 1, still live); idempotent."""
        async with runtime.db.connection() as conn:
            committed = await registry.committed_by(conn, event.job_id)
            current = committed and await registry.get(conn, committed["name"])
        if committed is None or current is None:
            return  # nothing committed, or already dropped
        kb = committed["name"]
        if committed["version"] != 1 or current["version"] != 1:
            log.warning("knowledge base %s has other versions; version %d is left in place",
                        kb, committed["version"])  # fmt: skip
            return
        await asyncio.to_thread(provider().store.drop, kb)
        async with runtime.db.connection() as conn:
            await conn.execute("DELETE FROM rag_knowledge_bases WHERE name = %s", (kb,))
        provider().kb_rows.forget(kb)
        log.info("knowledge base %s removed", kb)

    return undo
