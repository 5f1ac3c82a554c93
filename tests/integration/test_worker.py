"""The shared worker: durable intake, progress, failure, cancellation and takeover after a crash."""

import asyncio
import itertools
import uuid

import pytest

from lorag_core.contracts import JobRequested
from tests.support.db import fetch_all, wait_for_job
from tests.support.kafka import publish_raw
from tests.support.processes import start_service
from tests.support.topic_log import read_whole_topic

pytestmark = pytest.mark.integration


@pytest.fixture
def echo(settings, logs_dir):
    service = start_service("tests.support.echo_service", logs_dir, LORAG_WORKER_LEASE_S="4")
    yield service
    if service.process.poll() is None:
        service.stop()


async def submit(settings, spec: str) -> str:
    job_id = f"job-echo-{uuid.uuid4().hex[:10]}"
    event = JobRequested(
        job_id=job_id,
        training_type="LOCAL_FINE_TUNING",
        minion_id=spec,
        datasets=[{"uri": "s3://b/k"}],
    )
    await publish_raw(
        settings.kafka.bootstrap_servers, event.topic, event.to_bytes(), key=job_id.encode()
    )
    return job_id


async def test_a_job_runs_to_success_with_ordered_progress(settings, tracker, echo):
    job_id = await submit(settings, "steps=5")
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=30)
    assert job["result"]["summary"] == {"steps": 5, "attempt": 1}
    log = await fetch_all(
        settings.postgres_dsn,
        "SELECT seq, state FROM job_progress WHERE job_id = %s ORDER BY seq",
        job_id,
    )
    states = [r["state"] for r in log]
    assert states[0] == "VALIDATING" and states[-1] == "SUCCEEDED" and "RUNNING" in states
    assert [r["seq"] for r in log] == list(range(1, len(log) + 1))


async def test_a_failing_job_ends_failed_with_its_code(settings, tracker, echo):
    job_id = await submit(settings, "steps=1,fail")
    job = await wait_for_job(settings.postgres_dsn, job_id, state="FAILED", timeout=30)
    assert job["error"]["code"] == "ECHO_FAILED"


async def test_cancel_stops_a_running_job_within_five_seconds(settings, tracker, echo, gateway):
    job_id = await submit(settings, "steps=200")
    job = await wait_for_job(settings.postgres_dsn, job_id, state="RUNNING", timeout=30)
    started = asyncio.get_running_loop().time()  # the clock runs from the user's command
    cancelled = await asyncio.to_thread(gateway.cli, "jobs", "cancel", job_id, owner=job["owner"])
    assert cancelled.returncode == 0, cancelled.stderr
    await wait_for_job(settings.postgres_dsn, job_id, state="CANCELLED", timeout=10)
    assert asyncio.get_running_loop().time() - started < 5


async def test_a_job_cancelled_while_queued_never_runs(settings, tracker, logs_dir, gateway):
    job_id = await submit(settings, "steps=1")  # no worker is running yet
    job = await wait_for_job(settings.postgres_dsn, job_id, state="QUEUED", timeout=30)
    cancelled = await asyncio.to_thread(gateway.cli, "jobs", "cancel", job_id, owner=job["owner"])
    assert cancelled.returncode == 0, cancelled.stderr
    worker = start_service("tests.support.echo_service", logs_dir)
    try:
        await wait_for_job(settings.postgres_dsn, job_id, state="CANCELLED", timeout=30)
    finally:
        worker.stop()
    states = await fetch_all(
        settings.postgres_dsn, "SELECT state FROM job_progress WHERE job_id = %s", job_id
    )
    assert [r["state"] for r in states] == ["CANCELLED"]  # claimed, seen cancelled, not run


async def test_a_killed_worker_is_taken_over_and_the_job_finishes(
    settings, tracker, echo, logs_dir
):
    job_id = await submit(settings, "steps=30")
    await wait_for_job(settings.postgres_dsn, job_id, state="RUNNING", timeout=30)
    echo.kill()
    survivor = start_service("tests.support.echo_service", logs_dir, LORAG_WORKER_LEASE_S="4")
    try:
        job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=60)
    finally:
        survivor.stop()
    assert job["result"]["summary"]["attempt"] == 2
    # The topic holds the events in the order they were produced (one partition per job); the
    # tracker's table is keyed by seq, so a repeated seq would vanish there, not show.
    produced = [
        e
        for e in await read_whole_topic(settings.kafka.bootstrap_servers, "job.progress")
        if e.get("job_id") == job_id
    ]
    seqs = [e["seq"] for e in produced]
    assert all(a < b for a, b in itertools.pairwise(seqs)), seqs
    states = [e["state"] for e in produced]
    assert states.count("VALIDATING") == 2, states  # each attempt published, one after the other
    assert states[-1] == "SUCCEEDED"
    recorded = await fetch_all(
        settings.postgres_dsn, "SELECT seq FROM job_progress WHERE job_id = %s", job_id
    )
    assert sorted(r["seq"] for r in recorded) == seqs  # the tracker kept every one
