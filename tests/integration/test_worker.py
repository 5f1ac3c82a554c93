"""The shared worker: durable intake, progress, failure, cancellation and takeover after a crash."""

import asyncio
import itertools
import json
import uuid

import pytest

from lorag_core.contracts import JobRequested
from tests.support.db import fetch_all, wait_for_job
from tests.support.kafka import publish_raw
from tests.support.processes import ServiceProcess, start_replicas, start_service
from tests.support.topic_log import read_whole_topic

pytestmark = pytest.mark.integration


@pytest.fixture
def echo(settings, logs_dir):
    service = start_service(
        "tests.support.echo_service", logs_dir, LORAG_WORKER_LEASE_S="4", LORAG_INSTANCE_ID="echo-1"
    )
    yield service
    if service.process.poll() is None:
        service.stop()


async def submit(settings, spec: str) -> str:
    job_id = f"job-echo-{uuid.uuid4().hex[:10]}"
    event = JobRequested(
        job_id=job_id,
        training_type="LOCAL_FINE_TUNING",
        minion_id=spec,
        datasets=[{"uri": "s3://lorag-datasets/k"}],
    )
    await publish_raw(
        settings.kafka.bootstrap_servers, event.topic, event.to_bytes(), key=job_id.encode()
    )
    return job_id


async def test_a_job_runs_to_success_with_ordered_progress(settings, tracker, echo):
    job_id = await submit(settings, "steps=5")
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=30)
    assert job["result"]["summary"] == {"steps": 5, "attempt": 1}
    assert job["worker"] == "echo-1"  # the instance that ran it is on the record
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
    survivor = start_service(
        "tests.support.echo_service", logs_dir, LORAG_WORKER_LEASE_S="4", LORAG_INSTANCE_ID="echo-2"
    )
    try:
        job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=60)
    finally:
        survivor.stop()
    assert job["result"]["summary"]["attempt"] == 2 and job["worker"] == "echo-2"
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


async def test_jobs_show_names_the_worker_that_ran_the_job(settings, tracker, echo, gateway):
    job_id = await submit(settings, "steps=1")
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=30)
    shown = await asyncio.to_thread(
        gateway.cli, "jobs", "show", job_id, "--json", owner=job["owner"]
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["worker"] == "echo-1"
    text = await asyncio.to_thread(gateway.cli, "jobs", "show", job_id, owner=job["owner"])
    assert "worker: echo-1" in text.stdout


async def test_a_graceful_stop_queues_the_job_again_without_using_an_attempt(
    settings, tracker, echo, logs_dir
):
    # it publishes a report every 10 ms, so it is reporting as the service stops: the worker
    # must stop while the producer is still there
    job_id = await submit(settings, "steps=400,pause=0.01,eager")
    await wait_for_job(settings.postgres_dsn, job_id, state="RUNNING", timeout=30)
    assert await asyncio.to_thread(echo.stop) == 0
    (item,) = await work_item(settings, job_id)
    assert (item["status"], item["attempts"], item["lease_owner"]) == ("queued", 0, None)
    successor = start_service("tests.support.echo_service", logs_dir, LORAG_INSTANCE_ID="echo-2")
    try:
        job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=30)
    finally:
        successor.stop()
    assert job["result"]["summary"]["attempt"] == 1 and job["worker"] == "echo-2"


async def test_a_job_whose_worker_is_killed_on_every_attempt_ends_attempts_exhausted(
    settings, tracker, logs_dir
):
    """Four instances, a cap of three: each claimer is SIGKILLed; the fourth claim gives up."""
    echoes = await asyncio.to_thread(
        start_replicas, "tests.support.echo_service", logs_dir, 4, name="doomed",
        LORAG_WORKER_LEASE_S="3", LORAG_WORKER_MAX_ATTEMPTS="3",
    )  # fmt: skip
    by_id: dict[str, ServiceProcess] = {e.instance_id: e for e in echoes}  # type: ignore[misc]
    try:
        job_id = await submit(settings, "steps=1000")
        killed = []
        for attempt in (1, 2, 3):
            item = await wait_item(settings, job_id, lambda i, n=attempt: i["attempts"] == n)
            await wait_validating(settings, job_id, attempt)  # it started, then dies
            claimer = item["workers"][-1]
            by_id.pop(claimer).kill()
            killed.append(claimer)
        job = await wait_for_job(settings.postgres_dsn, job_id, state="FAILED", timeout=60)
    finally:
        for echo in by_id.values():
            echo.stop()
    error = job["error"]
    assert error["code"] == "ATTEMPTS_EXHAUSTED" and not error["retryable"]
    assert "started 3 times" in error["message"] and "memory limit" in error["message"]
    assert all(name in error["message"] for name in killed)
    (item,) = await work_item(settings, job_id)
    assert (item["status"], item["outcome"], item["attempts"]) == ("done", "FAILED", 4)
    assert item["workers"][:3] == killed  # one claim per attempt; the fourth gave up
    states = [
        r["state"]
        for r in await fetch_all(
            settings.postgres_dsn,
            "SELECT state FROM job_progress WHERE job_id = %s ORDER BY seq",
            job_id,
        )
    ]
    assert states.count("VALIDATING") == 3 and states[-1] == "FAILED"


async def work_item(settings, job_id: str) -> list[dict]:
    return await fetch_all(
        settings.postgres_dsn,
        "SELECT status, outcome, attempts, workers, lease_owner FROM work_items WHERE job_id = %s",
        job_id,
    )


async def wait_item(settings, job_id: str, done, timeout: float = 30) -> dict:
    """Poll the job's work item until `done(item)`."""
    deadline = asyncio.get_running_loop().time() + timeout
    rows: list[dict] = []
    while asyncio.get_running_loop().time() < deadline:
        rows = await work_item(settings, job_id)
        if rows and done(rows[0]):
            return rows[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"work item of {job_id} not as expected in {timeout}s: {rows}")


async def wait_validating(settings, job_id: str, runs: int, timeout: float = 30) -> None:
    """Poll until the job's progress log shows `runs` starts (VALIDATING events)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        rows = await fetch_all(
            settings.postgres_dsn,
            "SELECT count(*) AS n FROM job_progress WHERE job_id = %s AND state = 'VALIDATING'",
            job_id,
        )
        if rows[0]["n"] >= runs:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{job_id} did not start {runs} times in {timeout}s")
