"""/api/jobs: submit, list, show, cancel, and watch progress as Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse

from lorag_core.domain.job_state import JobState
from lorag_gateway.api.models import CancelAccepted, JobAccepted, JobDetail, JobSummary, refusals
from lorag_gateway.auth import OwnerDep
from lorag_gateway.deps import GatewayDep
from lorag_gateway.handlers import jobs

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


class SubmitJob(BaseModel):
    """A training job to run on datasets already in object storage."""

    training_type: str = Field(
        description="EXTERNAL_RAG, LOCAL_LORA, … (legacy names mapped).", examples=["EXTERNAL_RAG"]
    )
    datasets: list[str] = Field(
        min_length=1, max_length=256, description="s3:// URIs, e.g. from POST /api/datasets."
    )
    parameters: dict[str, Any] | None = Field(default=None, description="Typed per type.")
    minion_id: str | None = Field(default=None, max_length=128, description="Minion it trains.")


@router.post("", status_code=202, summary="Submit a job", responses=refusals(403, 502, 503))
async def submit(body: SubmitJob, owner: OwnerDep, gateway: GatewayDep) -> JobAccepted:
    accepted = await jobs.submit(gateway.broker, gateway.lora, owner, body.model_dump())
    return JobAccepted.model_validate(accepted)


@router.get("", summary="List the caller's jobs, newest first", responses=refusals(404))
async def list_jobs(
    owner: OwnerDep, gateway: GatewayDep, state: JobState | None = None,
    type: str | None = None, limit: int = Query(50, ge=1, le=1000),
    before: str | None = Query(None, max_length=128, description=(
        "Next page: the job id the previous page ended with; only jobs after it are listed."
    )),
) -> list[JobSummary]:  # fmt: skip
    rows = await jobs.list_owned(
        gateway.db, owner, state=state, training_type=type, limit=limit, before=before
    )
    return [JobSummary.model_validate(r) for r in rows]


@router.get("/{job_id}", summary="One job with its progress log", responses=refusals(404))
async def show(job_id: str, owner: OwnerDep, gateway: GatewayDep) -> JobDetail:
    return JobDetail.model_validate(await jobs.show(gateway.db, owner, job_id))


class CancelJob(BaseModel):
    reason: str = Field("cancelled in the console", max_length=500, description="Kept on the job.")


@router.post(
    "/{job_id}/cancel", status_code=202, summary="Ask to cancel a running job",
    responses=refusals(403, 404, 409),
)  # fmt: skip
async def cancel(
    job_id: str, owner: OwnerDep, gateway: GatewayDep, body: CancelJob | None = None
) -> CancelAccepted:
    reason = body.reason if body is not None else CancelJob().reason
    return CancelAccepted.model_validate(
        await jobs.cancel(gateway.db, gateway.broker, owner, job_id, reason)
    )


@router.get(
    "/{job_id}/events", summary="Live progress (text/event-stream) until the job ends",
    response_class=EventSourceResponse, responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
              "description": "Server-Sent Events: `progress` events, then `end`."},
        **refusals(404),
    },
)  # fmt: skip
async def events(job_id: str, owner: OwnerDep, gateway: GatewayDep) -> EventSourceResponse:
    await jobs.show(gateway.db, owner, job_id)  # 404 before the stream opens

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for message in gateway.watchers.watch(job_id):
            yield {"event": message["event"],
                   "data": json.dumps(jsonable_encoder(message["data"]))}  # fmt: skip

    return EventSourceResponse(stream(), ping=15)
