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


@router.post("", status_code=202, summary="Submit a job")
async def submit(body: SubmitJob, owner: OwnerDep, gateway: GatewayDep) -> dict[str, Any]:
    return await jobs.submit(gateway.broker, gateway.lora, owner, body.model_dump())


@router.get("", summary="List the caller's jobs, newest first")
async def list_jobs(
    owner: OwnerDep, gateway: GatewayDep, state: JobState | None = None,
    type: str | None = None, limit: int = Query(50, ge=1, le=1000),
    before: str | None = Query(None, max_length=128, description=(
        "Next page: the job id the previous page ended with; only jobs after it are listed."
    )),
) -> list[dict[str, Any]]:  # fmt: skip
    return await jobs.list_owned(
        gateway.db, owner, state=state, training_type=type, limit=limit, before=before
    )


@router.get("/{job_id}", summary="One job with its progress log")
async def show(job_id: str, owner: OwnerDep, gateway: GatewayDep) -> dict[str, Any]:
    return await jobs.show(gateway.db, owner, job_id)


class CancelJob(BaseModel):
    reason: str = Field("cancelled in the console", max_length=500, description="Kept on the job.")


@router.post("/{job_id}/cancel", status_code=202, summary="Ask to cancel a running job")
async def cancel(
    job_id: str, owner: OwnerDep, gateway: GatewayDep, body: CancelJob | None = None
) -> dict[str, Any]:
    reason = body.reason if body is not None else CancelJob().reason
    return await jobs.cancel(gateway.db, gateway.broker, owner, job_id, reason)


@router.get("/{job_id}/events", summary="Live progress (text/event-stream) until the job ends")
async def events(job_id: str, owner: OwnerDep, gateway: GatewayDep) -> EventSourceResponse:
    await jobs.show(gateway.db, owner, job_id)  # 404 before the stream opens

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for message in gateway.watchers.watch(job_id):
            yield {"event": message["event"],
                   "data": json.dumps(jsonable_encoder(message["data"]))}  # fmt: skip

    return EventSourceResponse(stream(), ping=15)
