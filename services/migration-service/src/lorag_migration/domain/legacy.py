"""A legacy job row, and what it becomes in the new job model (or why it cannot).

State mapping: pending→QUEUED, done→SUCCEEDED, error/failed→FAILED (LEGACY_FAILED, the legacy
message kept), cancelled→CANCELLED, and running→FAILED with LEGACY_INTERRUPTED, retryable.
A running legacy job is not made QUEUED: its worker is gone with the old system, the new
services start work from a `job.requested` event and never from a row, so a QUEUED row would
wait forever while claiming to be on its way; FAILED + retryable tells its owner the truth and
that resubmitting helps. The new job id is `legacy-<id>`, so converting twice yields one job.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from lorag_core.contracts.jobs import JobError, JobRequested
from lorag_core.domain.job_state import JobState
from lorag_core.domain.training_types import LegacyTrainingType
from lorag_migration.domain.legacy_config import ConfigError, dataset_of, parameters_of, summary

JOB_ID_PREFIX = "legacy-"
# event ids derive from the legacy id (uuid3: MD5, which the SQL fast path computes in the server
# too), so a re-conversion produces the identical request
EVENT_NAMESPACE = uuid.UUID("6c6f7261-672d-6c65-6761-63792d6a6f62")
MAX_ERROR_MESSAGE = 4000
STATES = {
    "pending": JobState.QUEUED, "queued": JobState.QUEUED, "running": JobState.FAILED,
    "done": JobState.SUCCEEDED, "error": JobState.FAILED, "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED, "canceled": JobState.CANCELLED,
}  # fmt: skip


@dataclass(frozen=True)
class LegacyJob:
    """One row of the old system's `legacy_training_jobs` table."""

    id: str
    minion_id: str | None
    type: str
    status: str
    config: Any
    error_message: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Converted:
    """The new job a legacy row becomes."""

    legacy: LegacyJob
    request: JobRequested
    state: JobState
    error: JobError | None

    @property
    def job_id(self) -> str:
        return self.request.job_id


@dataclass(frozen=True)
class Unconvertible:
    """A legacy row that stays where it is, and why."""

    legacy: LegacyJob
    reason: str


Conversion = Converted | Unconvertible


def job_id_for(legacy_id: str) -> str:
    return f"{JOB_ID_PREFIX}{legacy_id}"


def convert(row: LegacyJob) -> Conversion:
    """Map one legacy row to the new job model; never raises for bad data."""
    try:
        legacy_type = LegacyTrainingType(row.type.strip().upper())
    except ValueError:
        return Unconvertible(row, f"unknown legacy type {row.type!r}")
    status = row.status.strip().lower()
    if status not in STATES:
        return Unconvertible(row, f"unknown legacy status {row.status!r}")
    if not isinstance(row.config, dict):
        return Unconvertible(row, f"config is not a JSON object but {type(row.config).__name__}")
    try:
        request = JobRequested(
            event_id=uuid.uuid3(EVENT_NAMESPACE, row.id), occurred_at=row.created_at,
            job_id=job_id_for(row.id), training_type=legacy_type, minion_id=row.minion_id,
            datasets=(dataset_of(row.config),), parameters=parameters_of(legacy_type, row.config),
        )  # fmt: skip
    except ConfigError as exc:
        return Unconvertible(row, str(exc))
    except ValidationError as exc:
        return Unconvertible(row, f"invalid job request: {summary(exc)}")
    return Converted(row, request, STATES[status], _error(status, row.error_message))


def _error(status: str, message: str | None) -> JobError | None:
    if status == "running":
        return JobError(
            code="LEGACY_INTERRUPTED", retryable=True,
            message="the job was running in the legacy system when it was migrated and its "
            "progress is lost; submit it again",
        )  # fmt: skip
    if status in ("error", "failed"):
        text = message or "failed in the legacy system, which recorded no message"
        return JobError(code="LEGACY_FAILED", message=text[:MAX_ERROR_MESSAGE])
    return None


def id_taken(done: Converted) -> Unconvertible:
    """A row whose new job id another job (not made by this conversion) already holds."""
    return Unconvertible(done.legacy, f"job id {done.job_id} already belongs to another job")
