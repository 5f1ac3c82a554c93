"""A batch folded ahead is a guess: real Postgres applies it only if the locked jobs stand where
it was folded from, and otherwise folds the batch again from where they do stand."""

import uuid

import psycopg
import pytest
from psycopg.rows import dict_row

from lorag_core.contracts import JobProgress, JobResult
from lorag_core.db import jobs
from lorag_core.domain.job_state import JobPosition, JobState
from lorag_core.tracker import NEW_JOB
from tests.support.db import fetch_all

pytestmark = pytest.mark.integration


def progress(job_id: str, seq: int, state: JobState, **extra) -> JobProgress:
    return JobProgress(job_id=job_id, seq=seq, state=state, producer="test", **extra)


async def finished_job(conn: psycopg.AsyncConnection) -> str:
    """A job that SUCCEEDED at sequence 2, folded and committed without a guess."""
    job_id = f"job-guess-{uuid.uuid4().hex[:10]}"
    done = progress(job_id, 2, JobState.SUCCEEDED, result=JobResult(summary={"chunks": 3}))
    await jobs.apply_progress(conn, [progress(job_id, 1, JobState.RUNNING), done])
    await conn.commit()
    return job_id


async def test_a_wrong_guess_is_folded_again_and_changes_nothing_it_should_not(settings):
    async with await psycopg.AsyncConnection.connect(
        settings.postgres_dsn, row_factory=dict_row
    ) as conn:
        job_id = await finished_job(conn)
        late = [progress(job_id, 3, JobState.RUNNING, message="late")]
        wrong = jobs.fold(late, {job_id: NEW_JOB})  # believes the job new: would move it back
        assert wrong.newest, "the guess would apply the late event"
        applied = await jobs.apply_progress(conn, late, guess=wrong)
        await conn.commit()
    assert applied is not None and applied is not wrong
    assert applied.start == {job_id: JobPosition(JobState.SUCCEEDED, 2)}
    (job,) = await fetch_all(
        settings.postgres_dsn, "SELECT state, last_seq, message FROM jobs WHERE job_id = %s", job_id
    )
    assert (job["state"], job["last_seq"], job["message"]) == ("SUCCEEDED", 2, None)
    log = await fetch_all(settings.postgres_dsn,
                          "SELECT seq, verdict FROM job_progress WHERE job_id = %s ORDER BY seq",
                          job_id)  # fmt: skip
    assert [(r["seq"], r["verdict"]) for r in log] == [(1, "applied"), (2, "applied"), (3, "final")]


async def test_a_right_guess_is_applied_as_it_was_folded(settings):
    async with await psycopg.AsyncConnection.connect(
        settings.postgres_dsn, row_factory=dict_row
    ) as conn:
        job_id = await finished_job(conn)
        late = [progress(job_id, 3, JobState.RUNNING)]
        right = jobs.fold(late, {job_id: JobPosition(JobState.SUCCEEDED, 2)})
        applied = await jobs.apply_progress(conn, late, guess=right)
        await conn.commit()
    assert applied is right
    log = await fetch_all(settings.postgres_dsn,
                          "SELECT seq, verdict FROM job_progress WHERE job_id = %s ORDER BY seq",
                          job_id)  # fmt: skip
    assert [(r["seq"], r["verdict"]) for r in log] == [(1, "applied"), (2, "applied"), (3, "final")]
