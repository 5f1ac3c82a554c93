"""A service's answer to `job.compensate`: remove what one of its finished jobs produced."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from faststream.kafka.annotations import KafkaMessage

from lorag_core.contracts import CompensationRequested
from lorag_core.messaging.delivery import records_of
from lorag_core.messaging.topics import JOB_COMPENSATE
from lorag_core.service.host import Runtime, ServiceHost
from lorag_core.telemetry import job_context, stage_span

Undo = Callable[[Runtime, CompensationRequested], Awaitable[None]]
log = logging.getLogger(__name__)


def register_compensation(host: ServiceHost, undo: Undo) -> None:
    """Subscribe the service's group to `job.compensate` for the jobs it ran.

    At least once: `undo` must be idempotent (undoing twice removes nothing more).
    """
    delivery = host.delivery(f"lorag.{host.service}.compensate")

    async def route(event: CompensationRequested) -> None:
        async with host.runtime.db.connection() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM work_items WHERE service = %s AND job_id = %s",
                (host.service, event.job_id),
            )
            ours = await cur.fetchone() is not None
        if ours:
            attributes = {"lorag.job_id": event.job_id, "lorag.parent_job_id": event.parent_job_id}
            with job_context(event.job_id), stage_span("job.compensate", attributes):
                log.warning("compensating for %s: %s", event.parent_job_id, event.reason)
                await undo(host.runtime, event)

    @host.at_least_once(JOB_COMPENSATE, delivery)
    async def on_compensate(message: KafkaMessage) -> None:
        (record,) = records_of(message)
        await delivery.one(record, CompensationRequested, route)
