"""Legacy requests on the wire: the old system's `{"id", "type", "config"}` payload on
`job.requested` becomes a current `JobRequested` (same mapping as the table conversion), which
every other consumer then handles as usual. Consumers other than this one skip the legacy shape.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from faststream.kafka.annotations import KafkaMessage

from lorag_core.contracts import JobRequested
from lorag_core.contracts.legacy import is_legacy_request
from lorag_core.messaging.broker import publish_event
from lorag_core.messaging.delivery import Delivery, records_of
from lorag_core.service.host import ServiceHost
from lorag_migration.domain.legacy import Converted, LegacyJob, convert

log = logging.getLogger(__name__)


def normalise(payload: dict[str, Any]) -> JobRequested | str:
    """A legacy payload as a current request, or the reason it cannot be one."""
    now = datetime.now(UTC)
    row = LegacyJob(
        id=str(payload["id"]), minion_id=payload.get("minion_id"), type=str(payload["type"]),
        status="pending", config=payload["config"], error_message=None,
        created_at=now, updated_at=now,
    )  # fmt: skip
    outcome = convert(row)
    return outcome.request if isinstance(outcome, Converted) else outcome.reason


def register_legacy_intake(host: ServiceHost) -> None:
    """Normalise legacy-shaped requests; at least once (the republished request is idempotent
    by job id, so a redelivery publishes an identical request that changes nothing)."""
    delivery: Delivery = host.delivery(f"lorag.{host.service}.legacy")

    @host.at_least_once(JobRequested.topic, delivery)
    async def on_job_requested(message: KafkaMessage) -> None:
        (record,) = records_of(message)
        try:
            payload = json.loads(record.value or b"")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return  # not ours: the tracker dead-letters it
        if not isinstance(payload, dict) or not is_legacy_request(payload):
            return
        outcome = normalise(payload)
        if isinstance(outcome, str):
            await delivery.dead_letter(record, "LEGACY_UNCONVERTIBLE", outcome)
            return
        await publish_event(host.broker, outcome)
        log.info("legacy request %s normalised into %s", payload["id"], outcome.job_id)
