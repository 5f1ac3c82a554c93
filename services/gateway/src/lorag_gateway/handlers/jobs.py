"""Submitting, listing, showing and cancelling an owner's jobs."""

from __future__ import annotations

import uuid
from typing import Any

from faststream.kafka import KafkaBroker
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from lorag_api.lora import LoraClient
from lorag_core.contracts import (
    DatasetRef,
    HybridParameters,
    JobCancelRequested,
    JobRequested,
    LoraParameters,
)
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


def adapter_named(event: JobRequested) -> tuple[str, tuple[str | int, ...]] | None:
    """The adapter a job will add a version to when the body names it, and the naming field."""
    params = event.parameters
    if isinstance(params, LoraParameters) and params.adapter:
        return params.adapter, ("body", "parameters", "adapter")
    if isinstance(params, HybridParameters):  # the LoRA stage's adapter is named after the minion
        if params.lora.adapter:
            return params.lora.adapter, ("body", "parameters", "lora", "adapter")
        if params.minion:
            return params.minion, ("body", "parameters", "minion")
    if event.resolved.effective.is_hybrid and event.minion_id:
        return event.minion_id, ("body", "minion_id")
    return None  # named after the new job's id: nobody else's


async def submit(broker: KafkaBroker, lora: LoraClient, owner: str, body: dict[str, Any]) -> Row:
    """Publish the job's request; the tracker records it QUEUED."""
    event = build_request(owner, body)
    named = adapter_named(event)
    if named is not None:  # the lora-service would fail the job: say so on the field, now
        check = await lora.check_name(owner, named[0])
        if not check.available:
            raise Invalid.field(named[1], check.message or f"adapter {named[0]!r} is taken")
    await publish_event(broker, event)
    return {
        "job_id": event.job_id,
        "state": JobState.QUEUED.value,
        "effective_type": event.resolved.effective.value,
    }


async def list_owned(
    db: AsyncConnectionPool, owner: str, *, before: str | None = None, **filters: Any
) -> list[Row]:
    """The owner's jobs, newest first; `before` (one of the owner's job ids) gives the next page."""
    async with db.connection() as conn:
        try:
            return await store.list_jobs(conn, owner=owner, before=before, **filters)
        except LookupError:
            raise NotFound(
                f"no job {before!r} to page from: `before` takes one of your job ids"
            ) from None


async def show(db: AsyncConnectionPool, owner: str, job_id: str) -> Row:
    """One job of the owner's with its progress log; NotFound for anyone else's."""
    async with db.connection() as conn:
        job = await store.get_job(conn, job_id)
        if job is None or job["owner"] != owner:
            raise NotFound(f"no job {job_id!r}")
        return {**job, "progress": await store.progress_log(conn, job_id)}


async def cancel(
    db: AsyncConnectionPool, broker: KafkaBroker, owner: str, job_id: str, reason: str
) -> Row:
    """Ask the service running the job to stop it; Conflict when it already ended."""
    job = await show(db, owner, job_id)
    if JobState(job["state"]).is_terminal:
        raise Conflict(f"job {job_id} already ended {job['state']}; there is nothing to cancel")
    await publish_event(
        broker, JobCancelRequested(job_id=job_id, reason=reason,
                                   requested_by=f"gateway:{owner}"[:64]),
    )  # fmt: skip
    return {"job_id": job_id, "cancel_requested": True, "state": job["state"]}
