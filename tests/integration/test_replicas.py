"""Three rag-service replicas share one queue: the work spreads, nothing runs twice, and a
replica killed mid-job is taken over by another after its lease.

The replicas share a real Chroma server, as replicas in a deployment do (embedded Chroma is not
safe across processes), and the session's Kafka, Postgres and S3.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from lorag_core.contracts import DatasetRef, JobRequested, RagParameters
from lorag_core.storage import ObjectStore
from tests.support.chroma import chroma_server
from tests.support.db import fetch_all, wait_for_job
from tests.support.kafka import publish_raw
from tests.support.notes import notes
from tests.support.processes import start_replicas

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # three models load at once
PARAMS = {"chunk_tokens": 64, "chunk_overlap": 8}
LEASE_S = 3


def upload(objects: ObjectStore, files: dict[str, bytes]) -> str:
    prefix = f"test-replicas-{uuid.uuid4().hex[:10]}"
    for name, data in files.items():
        objects.put_bytes("lorag-datasets", f"{prefix}/{name}", data)
    return f"s3://lorag-datasets/{prefix}/"


async def submit(settings, uri: str) -> str:
    job_id = f"job-rep-{uuid.uuid4().hex[:10]}"
    event = JobRequested(
        job_id=job_id,
        training_type="EXTERNAL_RAG",
        datasets=(DatasetRef(uri=uri),),
        parameters=RagParameters(kb=f"rep-{job_id[-10:]}", **PARAMS),
    )
    await publish_raw(
        settings.kafka.bootstrap_servers, event.topic, event.to_bytes(), key=job_id.encode()
    )
    return job_id


@pytest.fixture(scope="module")
def objects(settings):
    return ObjectStore.from_settings(settings.s3)


@pytest.fixture(scope="module")
def replicas(settings, tracker, logs_dir, tmp_path_factory):
    """rag-service-1..3, started together, until the module ends (or a test kills one)."""
    state = tmp_path_factory.mktemp("replicas")
    with chroma_server(state / "chroma", logs_dir) as chroma_url:
        started = time.monotonic()
        running = start_replicas(
            "lorag_rag", logs_dir, 3, name="rag-service", ready_timeout=240,
            LORAG_WORKER_LEASE_S=str(LEASE_S), LORAG_CHROMA_URL=chroma_url,
            LORAG_RAG_TORCH_THREADS="1", LORAG_STATE_DIR=str(state), HF_HUB_OFFLINE="1",
        )  # fmt: skip
        for replica in running:  # ready answers before the worker runs (the group is joined)
            replica.wait_log(f"worker {replica.instance_id} claiming", timeout=120)
        print(f"3 rag-service replicas ready in {time.monotonic() - started:.1f}s")
        yield running
        for replica in running:
            if replica.process.poll() is None:
                replica.stop()


async def test_nine_jobs_spread_over_the_replicas_and_each_runs_once(settings, replicas, objects):
    uris = [upload(objects, notes(seed, files=2, sentences=40)) for seed in range(9)]
    started = time.monotonic()
    job_ids = await asyncio.gather(*(submit(settings, uri) for uri in uris))
    jobs = await asyncio.gather(
        *(wait_for_job(settings.postgres_dsn, j, state="SUCCEEDED", timeout=240) for j in job_ids)
    )
    elapsed = time.monotonic() - started
    workers = [job["worker"] for job in jobs]
    print(f"nine jobs in {elapsed:.1f}s ({9 * 60 / elapsed:.1f}/min); workers: {sorted(workers)}")
    assert set(workers) <= {r.instance_id for r in replicas}
    assert len(set(workers)) >= 2, f"all nine ran on {workers[0]}"

    items = await fetch_all(
        settings.postgres_dsn,
        "SELECT job_id, status, outcome, attempts, workers FROM work_items"
        " WHERE service = 'rag-service' AND job_id = ANY(%s)",
        job_ids,
    )
    assert len(items) == 9
    for item in items:  # one claim each, by the instance the job names
        job = next(j for j in jobs if j["job_id"] == item["job_id"])
        assert (item["status"], item["outcome"], item["attempts"]) == ("done", "SUCCEEDED", 1)
        assert item["workers"] == [job["worker"]]
    runs = await run_starts(settings, job_ids)  # every run's first event names its attempt
    assert {j["job_id"]: [f"attempt 1 on {j['worker']}"] for j in jobs} == runs
    ends = await fetch_all(
        settings.postgres_dsn,
        "SELECT job_id FROM job_progress WHERE job_id = ANY(%s)"
        " AND state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')",
        job_ids,
    )
    assert sorted(r["job_id"] for r in ends) == sorted(job_ids)  # one outcome each


async def test_a_replica_killed_mid_job_is_taken_over_after_its_lease(settings, replicas, objects):
    # big enough that the kill lands mid-embedding however fast the encoder (bf16: ~300/s)
    job_id = await submit(settings, upload(objects, notes(99, files=6, sentences=400)))
    job = await wait_embedding(settings, job_id)
    victim = next(r for r in replicas if r.instance_id == job["worker"])
    victim.kill()
    killed_at = time.monotonic()
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=180)
    print(f"taken over and finished {time.monotonic() - killed_at:.1f}s after the kill")
    survivors = {r.instance_id for r in replicas if r is not victim}
    assert job["worker"] in survivors and job["result"]["summary"]["attempt"] == 2
    (item,) = await fetch_all(
        settings.postgres_dsn,
        "SELECT attempts, workers, outcome FROM work_items WHERE job_id = %s",
        job_id,
    )
    assert item["workers"] == [victim.instance_id, job["worker"]] and item["attempts"] == 2
    assert (await run_starts(settings, [job_id]))[job_id] == [
        f"attempt 1 on {victim.instance_id}", f"attempt 2 on {job['worker']}",
    ]  # fmt: skip
    summary = job["result"]["summary"]
    assert summary["embedded"] + summary["resumed"] == summary["chunks"] == summary["added"]


async def wait_embedding(settings, job_id: str, timeout: float = 120) -> dict:
    """Wait until the job is embedding (mid-job, with its worker on record); return the row."""
    deadline = asyncio.get_running_loop().time() + timeout
    rows: list[dict] = []
    while asyncio.get_running_loop().time() < deadline:
        rows = await fetch_all(
            settings.postgres_dsn, "SELECT * FROM jobs WHERE job_id = %s", job_id
        )
        if rows and rows[0]["stage"] == "embedding" and (rows[0]["percent"] or 0) > 0:
            return rows[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"{job_id} did not reach embedding in {timeout}s: {rows}")


async def run_starts(settings, job_ids: list[str]) -> dict[str, list[str]]:
    """Each job's run starts, from its progress log: the worker's first event of every run."""
    rows = await fetch_all(
        settings.postgres_dsn,
        "SELECT job_id, message FROM job_progress WHERE job_id = ANY(%s)"
        " AND message LIKE 'attempt %% on %%' ORDER BY job_id, seq",
        job_ids,
    )
    starts: dict[str, list[str]] = {}
    for row in rows:
        starts.setdefault(row["job_id"], []).append(row["message"])
    return starts
