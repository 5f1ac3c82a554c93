"""What every drill shares: submitting small RAG jobs, and judging the outcome."""

from __future__ import annotations

import asyncio
import uuid

from lorag_core.contracts import DatasetRef, JobRequested, RagParameters
from lorag_core.storage import ObjectStore
from tests.support.db import fetch_all
from tests.support.kafka import publish_raw
from tests.support.notes import notes

FINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


def upload_notes(objects: ObjectStore, seed: int, files: int = 3, sentences: int = 60) -> str:
    prefix = f"drill-{uuid.uuid4().hex[:10]}"
    for name, data in notes(seed, files=files, sentences=sentences).items():
        objects.put_bytes("lorag-datasets", f"{prefix}/{name}", data)
    return f"s3://lorag-datasets/{prefix}/"


async def submit_rag(settings, uri: str) -> str:
    job_id = f"job-drill-{uuid.uuid4().hex[:10]}"
    event = JobRequested(
        job_id=job_id,
        training_type="EXTERNAL_RAG",
        datasets=(DatasetRef(uri=uri),),
        parameters=RagParameters(kb=f"drill-{job_id[-10:]}", chunk_tokens=64, chunk_overlap=8),
    )
    await publish_raw(
        settings.kafka.bootstrap_servers, event.topic, event.to_bytes(), key=job_id.encode()
    )
    return job_id


async def wait_final(settings, job_ids: list[str], timeout: float) -> dict[str, dict]:
    """Every job's row once all are final (or what was seen when the time ran out)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    rows: list[dict] = []
    while loop.time() < deadline:
        try:
            rows = await fetch_all(
                settings.postgres_dsn, "SELECT * FROM jobs WHERE job_id = ANY(%s)", job_ids
            )
        except Exception:  # a drill may have Postgres down for a moment
            await asyncio.sleep(1)
            continue
        if len(rows) == len(job_ids) and all(r["state"] in FINAL for r in rows):
            break
        await asyncio.sleep(0.5)
    return {r["job_id"]: r for r in rows}


async def judge(settings, name: str, job_ids: list[str], rows: dict[str, dict], kills: int) -> None:
    """Assert the drill's outcome and print its figures: jobs, kills, lost, duplicated."""
    dsn = settings.postgres_dsn
    lost = [j for j in job_ids if j not in rows or rows[j]["state"] not in FINAL]
    versions = await fetch_all(
        dsn, "SELECT job_id, count(*) AS n FROM rag_kb_versions WHERE job_id = ANY(%s)"
        " GROUP BY job_id", job_ids,
    )  # fmt: skip
    per_job = {v["job_id"]: v["n"] for v in versions}
    duplicated = [j for j, n in per_job.items() if n > 1]
    progress = await fetch_all(
        dsn, "SELECT job_id, seq, state FROM job_progress WHERE job_id = ANY(%s)"
        " ORDER BY job_id, occurred_at, recorded_at", job_ids,
    )  # fmt: skip
    out_of_order = []
    last: dict[str, int] = {}
    for p in progress:  # an event produced later carries a higher seq, across every attempt
        if p["seq"] <= last.get(p["job_id"], 0):
            out_of_order.append((p["job_id"], p["seq"], last[p["job_id"]]))
        last[p["job_id"]] = p["seq"]
    states = sorted(r["state"] for r in rows.values())
    print(
        f"\ndrill {name}: jobs={len(job_ids)} kills={kills} lost={len(lost)} "
        f"duplicated={len(duplicated)} states={states}"
    )
    assert not lost, f"jobs never finished: {[(j, rows.get(j, {}).get('state')) for j in lost]}"
    failed = {j: r["error"] for j, r in rows.items() if r["state"] != "SUCCEEDED"}
    assert not failed, f"jobs that did not succeed: {failed}"
    assert not duplicated, f"more than one KB version for {duplicated}"
    assert set(per_job) == set(job_ids), f"jobs without a KB version: {set(job_ids) - set(per_job)}"
    assert not out_of_order, f"progress seq went back: {out_of_order[:5]}"
