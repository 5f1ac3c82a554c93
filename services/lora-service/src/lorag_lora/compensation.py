"""Undoing a training a saga no longer wants: the adapter version is withdrawn and its files go."""

from __future__ import annotations

import asyncio
import logging

from lorag_core.contracts import CompensationRequested
from lorag_core.service.host import Runtime
from lorag_lora.adapters import registry
from lorag_lora.domain.registry import ADAPTERS_BUCKET, adapter_prefix

log = logging.getLogger(__name__)


async def undo(runtime: Runtime, event: CompensationRequested) -> None:
    """Withdraw the job's adapter version and delete its files; idempotent."""
    async with runtime.db.connection() as conn:
        row = await registry.withdraw(conn, event.job_id)
    if row is None:
        return
    assert runtime.objects is not None
    prefix = adapter_prefix(row["name"], row["version"])
    removed = await asyncio.to_thread(runtime.objects.delete_prefix, ADAPTERS_BUCKET, prefix)
    log.info("adapter %s:%d withdrawn, %d files removed", row["name"], row["version"], removed)
