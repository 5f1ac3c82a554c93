"""Job state follows the events, through real Kafka into real Postgres."""

import asyncio
import json
import uuid

import pytest

from lorag_core.contracts import JobError, JobProgress, JobRequested, JobResult
from lorag_core.db.changes import JobChanges
from lorag_core.domain.job_state import JobState
from tests.support.db import fetch_all, wait_for_job
from tests.support.kafka import publish_raw

pytestmark = pytest.mark.integration


def new_job_id() -> str:
    return f"job-test-{uuid.uuid4().hex[:10]}"


def request(job_id: str, training_type: str = "EXTERNAL_RAG") -> JobRequested:
    return JobRequested(
        job_id=job_id, training_type=training_type, datasets=[{"uri": "s3://lorag-datasets/t/"}]
    )


def progress(job_id: str, seq: int, state: JobState, **extra) -> JobProgress:
    return JobProgress(
        job_id=job_id, seq=seq, state=state, producer="test", percent=min(100, seq * 25), **extra
    )


async def send(settings, *events) -> None:
    for event in events:
        await publish_raw(
            settings.kafka.bootstrap_servers,
            event.topic,
            event.to_bytes(),
            key=event.job_id.encode(),
        )


async def test_request_creates_a_queued_job_and_progress_finishes_it(settings, tracker, gateway):
    job_id = new_job_id()
    await send(settings, request(job_id))
    job = await wait_for_job(settings.postgres_dsn, job_id, state="QUEUED")
    assert job["effective_type"] == "EXTERNAL_RAG" and job["last_seq"] == 0

    result = JobResult(summary={"chunks": 12})
    await send(
        settings,
        progress(job_id, 1, JobState.VALIDATING),
        progress(job_id, 2, JobState.RUNNING),
        progress(job_id, 3, JobState.SUCCEEDED, result=result),
    )
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED")
    assert job["result"]["summary"] == {"chunks": 12} and job["finished_at"] is not None

    shown = gateway.cli("jobs", "show", job_id, "--json", owner=job["owner"])
    assert shown.returncode == 0, shown.stderr
    printed = json.loads(shown.stdout)
    assert printed["state"] == "SUCCEEDED"
    assert [p["seq"] for p in printed["progress"]] == [1, 2, 3]
    table = gateway.cli("jobs", "show", job_id, owner=job["owner"])
    assert table.returncode == 0, table.stderr
    assert job_id in table.stdout and "SUCCEEDED" in table.stdout
    # Another owner's token does not see the job at all.
    other = gateway.cli("jobs", "show", job_id, owner="someone-else")
    assert other.returncode == 1 and "no job" in other.stderr


async def test_duplicates_and_reordering_leave_one_job_with_the_right_end(settings, tracker):
    job_id = new_job_id()
    events = [
        progress(job_id, 1, JobState.VALIDATING),
        progress(job_id, 2, JobState.RUNNING),
        progress(job_id, 3, JobState.RUNNING),
        progress(
            job_id, 4, JobState.FAILED, error=JobError(code="DATASET_EMPTY", message="no rows")
        ),
    ]
    scrambled = [events[3], events[1], events[1], events[0], events[3], events[2], events[0]]
    req = request(job_id, "RAG")
    await send(settings, req, req)
    await send(settings, *scrambled)
    await send(settings, req)
    job = await wait_for_job(settings.postgres_dsn, job_id, state="FAILED")
    await asyncio.sleep(1.0)  # let any stragglers arrive: they must change nothing
    rows = await fetch_all(settings.postgres_dsn, "SELECT * FROM jobs WHERE job_id = %s", job_id)
    assert len(rows) == 1
    job = rows[0]
    assert job["state"] == "FAILED" and job["last_seq"] == 4
    assert job["error"]["code"] == "DATASET_EMPTY"
    assert (job["requested_type"], job["effective_type"]) == ("RAG", "EXTERNAL_RAG")
    log = await fetch_all(
        settings.postgres_dsn,
        "SELECT seq, state, message FROM job_progress WHERE job_id = %s ORDER BY seq",
        job_id,
    )
    assert [r["seq"] for r in log] == [0, 1, 2, 3, 4]
    assert "deprecated" in log[0]["message"]  # the legacy type's notice leads the log
    assert log[-1]["state"] == "FAILED"


async def test_progress_before_its_request_is_kept(settings, tracker):
    job_id = new_job_id()
    await send(
        settings, progress(job_id, 1, JobState.VALIDATING), progress(job_id, 2, JobState.RUNNING)
    )
    await asyncio.sleep(1.0)
    await send(settings, request(job_id))
    job = await wait_for_job(settings.postgres_dsn, job_id, state="RUNNING")
    assert job["effective_type"] == "EXTERNAL_RAG" and job["last_seq"] == 2


async def test_a_non_finite_metric_from_a_foreign_producer_is_kept_as_null(settings, tracker):
    """JSON has no infinity; a producer outside our contracts may still write `Infinity`, which
    the contract accepts and jsonb refuses: the event is folded with the figure as null."""
    job_id = new_job_id()
    body = progress(job_id, 1, JobState.RUNNING, metrics={"tokens": 5.0}).model_dump(mode="json")
    body["metrics"] = {"loss": "Infinity", "tokens": 5.0}
    raw = json.dumps(body).replace('"Infinity"', "Infinity").encode()
    assert b"Infinity," in raw  # the bare literal json.dumps would write
    await send(settings, request(job_id))
    await publish_raw(settings.kafka.bootstrap_servers, "job.progress", raw, key=job_id.encode())
    job = await wait_for_job(settings.postgres_dsn, job_id, state="RUNNING")
    assert job["metrics"] == {"loss": None, "tokens": 5.0}
    (logged,) = await fetch_all(
        settings.postgres_dsn, "SELECT metrics FROM job_progress WHERE job_id = %s", job_id
    )
    assert logged["metrics"] == {"loss": None, "tokens": 5.0}


async def test_text_in_progress_is_logged_exactly_as_sent(settings, tracker):
    """The log rows travel to Postgres as COPY text: a tab, a newline, a carriage return or a
    backslash in any text field (or inside JSON) comes back as it was sent."""
    job_id = new_job_id()
    tricky = 'tab\there, line\nbreak, cr\r, back\\slash \\N, quote " and \\t as text'
    events = [
        progress(job_id, 1, JobState.RUNNING, stage=f"stage {tricky}"[:64],
                 message=tricky, metrics={"loss": 0.25, f"k\t{tricky}": 1e-05}, eta_seconds=12.5),
        JobProgress(job_id=job_id, seq=2, state=JobState.SUCCEEDED, producer=f"p\\\t{job_id}",
                    result=JobResult(summary={"note": tricky, "n": 3})),
        JobProgress(job_id=job_id, seq=3, state=JobState.FAILED, producer="late",
                    error=JobError(code="TOO_LATE", message=tricky)),
    ]  # fmt: skip
    await send(settings, request(job_id), *events)
    await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED")
    async with asyncio.timeout(30):  # the late FAILED may be folded a batch later
        while len(logged := await fetch_all(
            settings.postgres_dsn,
            "SELECT * FROM job_progress WHERE job_id = %s AND seq > 0 ORDER BY seq",
            job_id,
        )) < len(events):  # fmt: skip
            await asyncio.sleep(0.2)
    for row, event in zip(logged, events, strict=True):
        assert (row["seq"], row["event_id"], row["state"]) == (event.seq, event.event_id,
                                                               event.state.value)  # fmt: skip
        assert (row["producer"], row["stage"], row["message"]) == (
            event.producer, event.stage, event.message)  # fmt: skip
        assert row["metrics"] == event.metrics
        assert row["percent"] == event.percent and row["eta_seconds"] == event.eta_seconds
        assert row["occurred_at"] == event.occurred_at
        assert row["result"] == (event.result.model_dump(mode="json") if event.result else None)
        assert row["error"] == (event.error.model_dump(mode="json") if event.error else None)
    assert [r["verdict"] for r in logged] == ["applied", "applied", "final"]


async def test_job_changes_wake_their_waiters_at_once(settings, tracker):
    """The tracker NOTIFYs each job it moves on: waiters wake without polling."""
    changes = JobChanges(settings.postgres_dsn)
    assert not changes.listening.is_set()
    changes.start()
    try:
        job_id = f"job-chg-{uuid.uuid4().hex[:8]}"
        await asyncio.wait_for(changes.listening.wait(), 10)  # the LISTEN is in place
        clock = asyncio.get_running_loop().time
        any_change = asyncio.create_task(changes.wait([job_id], timeout=30))
        ending = asyncio.create_task(changes.wait([job_id], timeout=30, ended=True))
        await asyncio.sleep(0.1)
        started = clock()
        await send(settings, progress(job_id, 1, JobState.RUNNING))
        assert await any_change is True and clock() - started < 5  # not the 30 s timeout
        assert not ending.done()  # RUNNING is not an ending
        await send(settings, progress(job_id, 2, JobState.SUCCEEDED))
        assert await ending is True and clock() - started < 10
        other = f"job-chg-{uuid.uuid4().hex[:8]}"
        assert await changes.wait([other], timeout=0.5) is False  # nothing happened to it
    finally:
        await changes.stop()
    assert not changes.listening.is_set()
