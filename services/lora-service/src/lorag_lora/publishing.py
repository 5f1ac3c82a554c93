"""Storing a trained adapter, registering its version and announcing it exactly once per version.

Order matters: files first (manifest last), then the registry row turns ready, then the event.
A crash anywhere is repaired by the retry: the job keeps its version, and `published_at` in
Postgres says whether adapter.created went out. The event id is derived from (name, version),
so even a crash between publishing and recording it yields a duplicate consumers drop.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lorag_core.contracts import AdapterCreated, ArtifactRef, JobResult
from lorag_core.messaging.broker import publish_event
from lorag_core.service.worker import JobContext, JobFailed
from lorag_lora.adapters import artifacts, registry
from lorag_lora.adapters.models import BaseModel
from lorag_lora.domain.registry import created_event_id
from lorag_lora.tuning import lora_config_of


async def if_already_stored(ctx: JobContext) -> JobResult | None:
    """A retried job whose adapter is already stored: only make sure it was announced."""
    async with ctx.runtime.db.connection() as conn:
        row = await registry.by_job(conn, ctx.job_id)
    if row is None or row["status"] != "ready":
        return None
    await _announce(ctx, row)
    return _result(row)


async def store_and_publish(
    ctx: JobContext, base: BaseModel, params: Any, folder: Path, metrics: dict[str, float]
) -> JobResult:
    """Upload the adapter under the job's version, mark it ready, publish adapter.created."""
    objects = ctx.runtime.objects
    assert objects is not None
    name = params.adapter or ctx.job_id
    async with ctx.runtime.db.connection() as conn:
        try:
            version = await registry.reserve_version(conn, name, ctx.job_id, ctx.request.owner)
        except registry.NameTaken as exc:
            raise JobFailed("ADAPTER_OWNED_BY_OTHER", str(exc)) from None
    lora = lora_config_of(params, base.model_type)
    training = params.model_dump(mode="json", exclude={"kind"})
    manifest = {
        "name": name,
        "version": version,
        "job_id": ctx.job_id,
        "base_model": base.name,
        "base_model_revision": base.revision,
        "lora_config": lora,
        "training_config": training,
        "metrics": metrics,
        "created_at": datetime.now(UTC).isoformat(),
    }
    weights = await asyncio.to_thread(
        artifacts.store_adapter, objects, folder, name, version, manifest
    )
    async with ctx.runtime.db.connection() as conn:
        await registry.mark_ready(
            conn,
            name,
            version,
            base_model=base.name,
            base_model_revision=base.revision,
            uri=artifacts.adapter_uri(name, version),
            sha256=weights.sha256,
            size_bytes=weights.size,
            lora_config=lora,
            training_config=training,
            metrics=metrics,
        )
        row = await registry.get(conn, name, version)
    assert row is not None
    await _announce(ctx, row)
    return _result(row)


async def _announce(ctx: JobContext, row: dict[str, Any]) -> None:
    if row["published_at"] is not None:
        return
    event = AdapterCreated(
        event_id=created_event_id(row["name"], row["version"]),
        adapter_name=row["name"],
        version=row["version"],
        job_id=row["job_id"],
        base_model=row["base_model"],
        base_model_revision=row["base_model_revision"],
        uri=row["uri"],
        sha256=row["sha256"],
        size_bytes=row["size_bytes"],
        lora_config=row["lora_config"],
        metrics=row["metrics"],
    )
    await publish_event(ctx.runtime.broker, event)
    async with ctx.runtime.db.connection() as conn:
        await registry.mark_published(conn, row["name"], row["version"])


def _result(row: dict[str, Any]) -> JobResult:
    return JobResult(
        artifacts=(
            ArtifactRef(
                kind="adapter", uri=row["uri"], sha256=row["sha256"], size_bytes=row["size_bytes"]
            ),
        ),
        summary={
            "adapter": row["name"],
            "version": row["version"],
            "base_model": row["base_model"],
            **row["metrics"],
        },
    )
