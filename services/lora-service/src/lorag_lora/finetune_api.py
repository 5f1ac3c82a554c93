"""The OpenAI fine-tuning API: /v1/files and /v1/fine_tuning/jobs, on the OpenAI API's port.

A fine-tuning job is a lorag LOCAL_LORA job published on job.requested, so it takes the same
Kafka and Postgres path as any other; its state, events and result are the job tracker's. Its
`fine_tuned_model` (ADAPTER:VERSION) is served at once by /v1/chat/completions. The owner is the
API key's; another owner's file or job is not found, exactly like a missing one.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, File, Form, Query, Request, UploadFile

from lorag_core.contracts import DatasetRef, JobCancelRequested, JobRequested, LoraParameters
from lorag_core.messaging.broker import publish_event
from lorag_core.service.host import Runtime, RuntimeDep
from lorag_lora import finetune_store as store
from lorag_lora.domain import chat_jsonl
from lorag_lora.finetune_models import (
    CreateJob,
    Deleted,
    FileObject,
    FilesPage,
    JobCheckpoints,
    JobEvents,
    JobObject,
    JobsPage,
    checkpoints_of,
    events_of,
    file_object,
    job_object,
)
from lorag_lora.openai_keys import ActingOwner
from lorag_lora.serving.errors import OpenAIError

BUCKET, PREFIX = "lorag-datasets", "fine-tune"
MAX_FILE_BYTES = 64 * 1024 * 1024
DEFAULT_LR = LoraParameters.model_fields["lr"].default
router = APIRouter(prefix="/v1", tags=["fine-tuning"])


def mount_fine_tuning(app: FastAPI, known_models: frozenset[str]) -> None:
    """Add the routes to the OpenAI API app (its error handlers answer in OpenAI's shape)."""
    app.state.fine_tune_models = known_models
    app.include_router(router)


def _missing(kind: str, ident: str, param: str) -> OpenAIError:
    return OpenAIError(404, f"No such {kind}: {ident}", code=f"{kind}_not_found", param=param)


@router.post("/files", response_model=FileObject, summary="Upload a fine-tuning file (chat JSONL)")
async def upload_file(
    owner: ActingOwner,
    runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="JSONL: one {messages: [...]} per line.")],
    purpose: Annotated[str, Form(description="fine-tune")],
) -> dict[str, Any]:
    if purpose != "fine-tune":
        raise OpenAIError(400, f"purpose {purpose!r} is not supported; use fine-tune",
                          param="purpose", code="invalid_purpose")  # fmt: skip
    data = await file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise OpenAIError(400, f"the file is larger than {MAX_FILE_BYTES} bytes", param="file")
    try:
        examples = chat_jsonl.check(data)
    except chat_jsonl.BadLine as exc:
        raise OpenAIError(400, f"invalid fine-tuning file: {exc}", param="file",
                          code="invalid_file_format") from None  # fmt: skip
    file_id = "file-" + secrets.token_hex(12)
    key = f"{PREFIX}/{owner}/{file_id}.jsonl"
    await asyncio.to_thread(_objects(runtime).put_bytes, BUCKET, key, data)
    row = {"file_id": file_id, "owner": owner, "filename": file.filename or "file.jsonl",
           "purpose": purpose, "bytes": len(data), "examples": examples,
           "uri": f"s3://{BUCKET}/{key}"}  # fmt: skip
    async with runtime.db.connection() as conn:
        return file_object(await store.add_file(conn, row))


@router.get("/files", response_model=FilesPage, summary="The owner's files")
async def list_files(owner: ActingOwner, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.db.connection() as conn:
        rows = await store.list_files(conn, owner)
    return {"object": "list", "data": [file_object(r) for r in rows], "has_more": False}


@router.get("/files/{file_id}", response_model=FileObject, summary="One file")
async def get_file(file_id: str, owner: ActingOwner, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.db.connection() as conn:
        row = await store.get_file(conn, owner, file_id)
    if row is None:
        raise _missing("file", file_id, "file_id")
    return file_object(row)


@router.delete("/files/{file_id}", response_model=Deleted, summary="Delete a file")
async def delete_file(file_id: str, owner: ActingOwner, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.db.connection() as conn:
        if not await store.delete_file(conn, owner, file_id):
            raise _missing("file", file_id, "file_id")
    return {"id": file_id, "object": "file", "deleted": True}


@router.post("/fine_tuning/jobs", response_model=JobObject, summary="Create a fine-tuning job")
async def create_job(
    body: CreateJob, owner: ActingOwner, runtime: RuntimeDep, request: Request
) -> dict[str, Any]:
    if body.model not in request.app.state.fine_tune_models:
        raise OpenAIError(404, f"The model {body.model!r} does not exist or cannot be fine-tuned "
                          f"here; use one of {sorted(request.app.state.fine_tune_models)}",
                          param="model", code="model_not_found")  # fmt: skip
    hyper = body.settled_hyperparameters()  # OpenAIError 400 when out of range
    async with runtime.db.connection() as conn:
        training = await store.get_file(conn, owner, body.training_file)
        validation = (
            await store.get_file(conn, owner, body.validation_file)
            if body.validation_file else None
        )  # fmt: skip
    if training is None:
        raise _missing("file", body.training_file, "training_file")
    if body.validation_file and validation is None:
        raise _missing("file", body.validation_file, "validation_file")
    ftjob_id = "ftjob-" + secrets.token_hex(12)
    adapter = f"ft-{body.suffix or 'model'}-{ftjob_id[6:14]}"
    seed = body.seed if body.seed is not None else secrets.randbelow(2**31)
    job_id = f"job-{ftjob_id}"
    params = LoraParameters(
        base_model=None if body.model in ("base", "tiny-llama") else body.model,
        adapter=adapter, epochs=hyper["n_epochs"], batch_size=hyper["batch_size"],
        lr=DEFAULT_LR * hyper["learning_rate_multiplier"], seed=seed,
    )  # fmt: skip
    event = JobRequested(
        job_id=job_id, training_type="LOCAL_LORA", owner=owner,
        datasets=(DatasetRef(uri=training["uri"]),), parameters=params,
    )  # fmt: skip
    row = {"ftjob_id": ftjob_id, "owner": owner, "job_id": job_id, "model": body.model,
           "training_file": body.training_file, "validation_file": body.validation_file,
           "suffix": body.suffix, "seed": seed, "hyperparameters": hyper,
           "adapter": adapter}  # fmt: skip
    async with runtime.db.connection() as conn:
        await store.add_job(conn, row)
    await publish_event(runtime.broker, event)
    return await _job(runtime, owner, ftjob_id)


@router.get("/fine_tuning/jobs", response_model=JobsPage, summary="The owner's jobs, paged")
async def list_jobs(
    owner: ActingOwner, runtime: RuntimeDep,
    after: Annotated[str | None, Query(description="Last job id of the previous page.")] = None,
    limit: Annotated[int, Query(description="Jobs per page, 1 to 100.")] = 20,
) -> dict[str, Any]:  # fmt: skip
    _check_limit(limit)
    async with runtime.db.connection() as conn:
        rows = await store.list_jobs(conn, owner, after, limit)
    return {"object": "list", "data": [job_object(r) for r in rows[:limit]],
            "has_more": len(rows) > limit}  # fmt: skip


@router.get("/fine_tuning/jobs/{ftjob_id}", response_model=JobObject, summary="One job")
async def retrieve_job(ftjob_id: str, owner: ActingOwner, runtime: RuntimeDep) -> dict[str, Any]:
    return await _job(runtime, owner, ftjob_id)


@router.post("/fine_tuning/jobs/{ftjob_id}/cancel", response_model=JobObject,
             summary="Cancel a job that has not ended")  # fmt: skip
async def cancel_job(ftjob_id: str, owner: ActingOwner, runtime: RuntimeDep) -> dict[str, Any]:
    job = await _job(runtime, owner, ftjob_id)
    if job["status"] in ("succeeded", "failed", "cancelled"):
        raise OpenAIError(400, f"job {ftjob_id} already ended {job['status']}; nothing to cancel",
                          param="fine_tuning_job_id", code="job_not_cancellable")  # fmt: skip
    async with runtime.db.connection() as conn:
        row = await store.get_job(conn, owner, ftjob_id)
    assert row is not None
    cancel = JobCancelRequested(
        job_id=row["job_id"], reason="cancelled through the fine-tuning API",
        requested_by=owner[:64],
    )  # fmt: skip
    await publish_event(runtime.broker, cancel)
    return job


@router.get("/fine_tuning/jobs/{ftjob_id}/events", response_model=JobEvents,
            summary="The job's status changes and per-step metrics, newest first")  # fmt: skip
async def job_events(
    ftjob_id: str, owner: ActingOwner, runtime: RuntimeDep,
    after: Annotated[str | None, Query(description="Last event id of the previous page.")] = None,
    limit: Annotated[int, Query(description="Events per page, 1 to 100.")] = 20,
) -> dict[str, Any]:  # fmt: skip
    _check_limit(limit)
    row = await _row(runtime, owner, ftjob_id)
    async with runtime.db.connection() as conn:
        progress = await store.progress(conn, row["job_id"])
    events = events_of(row, progress)  # newest first
    if after is not None:
        ids = [e["id"] for e in events]
        events = events[ids.index(after) + 1 :] if after in ids else []
    return {"object": "list", "data": events[:limit], "has_more": len(events) > limit}


@router.get("/fine_tuning/jobs/{ftjob_id}/checkpoints", response_model=JobCheckpoints,
            summary="The job's checkpoints: its adapter version once it succeeded")  # fmt: skip
async def job_checkpoints(ftjob_id: str, owner: ActingOwner, runtime: RuntimeDep) -> dict[str, Any]:
    data = checkpoints_of(await _row(runtime, owner, ftjob_id))
    return {"object": "list", "data": data, "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}  # fmt: skip


async def _row(runtime: Runtime, owner: str, ftjob_id: str) -> dict[str, Any]:
    async with runtime.db.connection() as conn:
        row = await store.get_job(conn, owner, ftjob_id)
    if row is None:
        raise _missing("fine_tuning_job", ftjob_id, "fine_tuning_job_id")
    return row


async def _job(runtime: Runtime, owner: str, ftjob_id: str) -> dict[str, Any]:
    return job_object(await _row(runtime, owner, ftjob_id))


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= 100:
        raise OpenAIError(400, f"limit must be 1 to 100, got {limit}", param="limit")


def _objects(runtime: Runtime) -> Any:
    if runtime.objects is None:
        raise OpenAIError(503, "object storage is not configured", "server_error")
    return runtime.objects
