"""What the gateway's own routes answer, declared so the OpenAPI document says it exactly.

Job rows carry the columns other components may add later (`extra="allow"`): the listed fields
are the ones callers may rely on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """Every refusal: a message (or FastAPI's field errors), and for most a code and a hint."""

    detail: str | list[dict[str, Any]] = Field(description="What is wrong, or the field errors.")
    code: str | None = Field(default=None, description="Stable machine-readable code.")
    hint: str | None = Field(default=None, description="What the caller can do about it.")


class Me(BaseModel):
    owner: str = Field(description="The owner the token acts for.")


class JobAccepted(BaseModel):
    job_id: str
    state: str = Field(description="QUEUED: the tracker records the job from its event.")
    effective_type: str = Field(description="The type the job runs as (legacy names mapped).")


class CancelAccepted(BaseModel):
    job_id: str
    cancel_requested: bool
    state: str = Field(description="The job's state when the cancel was asked for.")


class JobSummary(BaseModel):
    """One row of the job listing."""

    model_config = ConfigDict(extra="allow")

    job_id: str
    requested_type: str | None = None
    effective_type: str | None = None
    owner: str | None = None
    minion_id: str | None = None
    state: str
    stage: str | None = None
    percent: float | None = None
    eta_seconds: float | None = None
    parent_job_id: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


class ProgressEntry(BaseModel):
    """One progress event of a job, with what it did to the job (its verdict)."""

    model_config = ConfigDict(extra="allow")

    seq: int
    state: str
    verdict: str
    producer: str
    stage: str | None = None
    percent: float | None = None
    eta_seconds: float | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    message: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    occurred_at: datetime


class JobDetail(JobSummary):
    """A job with its request, outcome and progress log."""

    request: dict[str, Any] | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    message: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    progress: list[ProgressEntry] = Field(default_factory=list)


class StoredFile(BaseModel):
    name: str = Field(description="The stored name (only safe characters, no folders).")
    size: int
    sha256: str


class UploadedDataset(BaseModel):
    uri: str = Field(description="s3:// URI of the dataset (a prefix of the owner's).")
    files: list[StoredFile]


class DatasetListing(BaseModel):
    uri: str
    files: list[str]


WHY = {
    400: "A body that cannot be parsed, or a service's refusal (see code and hint)",
    401: "Missing, unknown, revoked or expired token",
    403: "The token is read-only",
    404: "No such thing of the caller's (another owner's is not found either)",
    409: "The thing's state does not allow it",
    413: "Upload too large",
    415: "Unsupported file type",
    422: "Invalid input (field errors, or a code and hint)",
    429: "Rate limit: retry after Retry-After seconds",
    502: "The gateway's service token was refused",
    503: "A service or the object storage is unavailable; retry after Retry-After seconds",
}
Responses = dict[int | str, dict[str, Any]]


def refusals(*statuses: int) -> Responses:
    """OpenAPI `responses` for these refusal statuses, each with the error body."""
    return {s: {"model": ErrorBody, "description": WHY[s]} for s in statuses}


EVERY_ROUTE = refusals(400, 401, 422, 429)  # a body, the token, bad input (a NUL too), the rate
FORWARDED = refusals(400, 404, 409, 502, 503)  # what a service's answer passed on may be
