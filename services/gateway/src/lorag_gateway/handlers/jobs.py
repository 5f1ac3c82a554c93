"""Submitting, listing, showing and cancelling an owner's jobs."""

from __future__ import annotations

import uuid
from typing import Any

from faststream.kafka import KafkaBroker
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from lorag_core.contracts import DatasetRef, JobCancelRequested, JobRequested
from lorag_core.contracts.jobs import PARAMETERS_BY_TYPE
from lorag_core.db import jobs as store
from lorag_core.domain.job_state import JobState
from lorag_core.domain.training_types import parse_training_type, resolve
from lorag_core.messaging.broker import publish_event
from lorag_gateway.errors import Conflict, Invalid, NotFound
from lorag_gateway.handlers.datasets import check_reference

Row = dict[str, Any]


def build_request(owner: str, body: dict[str, Any]) -> JobRequested:
    """A job.requested from the API's body; Invalid with field-level messages otherwise."""
    try:
        requested = parse_training_type(body["training_type"])
    except ValueError as exc:
        raise Invalid.field(("body", "training_type"), str(exc)) from None
    effective = resolve(requested).effective
    refs = [
        DatasetRef(uri=check_reference(uri, owner, ("body", "datasets", n)))
        for n, uri in enumerate(body["datasets"])
    ]
    raw = body.get("parameters") or {}
    try:
        parameters = PARAMETERS_BY_TYPE[effective].model_validate(raw) if raw else None
    except ValidationError as exc:
        raise Invalid(
            [
                {"loc": ["body", "parameters", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_input=False)
            ]
        ) from None
    try:
        return JobRequested(
            job_id=f"job-{uuid.uuid4().hex[:12]}", training_type=requested, owner=owner,
            minion_id=body.get("minion_id"), datasets=tuple(refs), parameters=parameters,
        )  # fmt: skip
    except ValidationError as exc:
        raise Invalid(
            [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        ) from None


async def submit(broker: KafkaBroker, owner: str, body: dict[str, Any]) -> Row:
    """Publish the job's request; the tracker records it QUEUED."""
    event = build_request(owner, body)
    await publish_event(broker, event)
    return {
        "job_id": event.job_id,
        "state": JobState.QUEUED.value,
        "effective_type": event.resolved.effective.value,
    }


async def list_owned(db: AsyncConnectionPool, owner: str, **filters: Any) -> list[Row]:
    async with db.connection() as conn:
        return await store.list_jobs(conn, owner=owner, **filters)


async def show(db: AsyncConnectionPool, owner: str, job_id: str) -> Row:
    """One job of the owner's with its progress log; NotFound for anyone else's."""
    async with db.connection() as conn:
        job = await store.get_job(conn, job_id)
        if job is None or job["owner"] != owner:
            raise NotFound(f"no job {job_id!r}")
        return {**job, "progress": await store.progress_log(conn, job_id)}


async def cancel(db: AsyncConnectionPool, broker: KafkaBroker, owner: str, job_id: str) -> Row:
    """Ask the service running the job to stop it; Conflict when it already ended."""
    job = await show(db, owner, job_id)
    if JobState(job["state"]).is_terminal:
        raise Conflict(f"job {job_id} already ended {job['state']}; there is nothing to cancel")
    await publish_event(
        broker, JobCancelRequested(job_id=job_id, reason="cancelled in the console",
                                   requested_by=f"gateway:{owner}"[:64]),
    )  # fmt: skip
    return {"job_id": job_id, "cancel_requested": True, "state": job["state"]}
