"""A service's own consumer group on `job.requested`: it takes the jobs of the types it owns."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from faststream.kafka.annotations import KafkaMessage

from lorag_core.contracts import JobRequested
from lorag_core.domain.training_types import TrainingType
from lorag_core.messaging.delivery import records_of
from lorag_core.messaging.topics import JOB_REQUESTED
from lorag_core.service.host import Runtime, ServiceHost
from lorag_core.telemetry import job_context

JobHandler = Callable[[Runtime, JobRequested], Awaitable[None]]
log = logging.getLogger(__name__)


def register_intake(
    host: ServiceHost,
    owned: frozenset[TrainingType],
    handle: JobHandler,
    *,
    stages: frozenset[str] = frozenset(),
) -> None:
    """Subscribe the service's group to `job.requested`; jobs of other types are skipped.

    Delivery is at least once: `handle` must be idempotent by job id.
    """
    delivery = host.delivery(f"lorag.{host.service}")

    async def route(event: JobRequested) -> None:
        if event.resolved.effective not in owned and event.stage not in stages:
            return
        with job_context(event.job_id):
            await handle(host.runtime, event)

    @host.at_least_once(JOB_REQUESTED, delivery)
    async def on_job_requested(message: KafkaMessage) -> None:
        (record,) = records_of(message)
        await delivery.one(record, JobRequested, route)


async def no_worker_yet(runtime: Runtime, event: JobRequested) -> None:
    """The handler of a service whose worker is not built yet: say so, leave the job QUEUED."""
    log.warning(
        "%s has no %s worker in this build; the job stays QUEUED",
        runtime.service,
        event.resolved.effective,
    )
