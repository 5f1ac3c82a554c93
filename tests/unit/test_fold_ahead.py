"""A batch of progress is folded from where its jobs stand, and the tracker folds the next batch
ahead from where it left the jobs: a pure fold, and a memory that only ever guesses."""

import asyncio

from lorag_core.contracts import JobError, JobProgress
from lorag_core.db.jobs import fold, fold_yielding
from lorag_core.domain.job_state import JobPosition, JobState, Verdict
from lorag_core.tracker import NEW_JOB, Whereabouts

RUNNING, SUCCEEDED, FAILED = JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED


def event(job_id: str, seq: int, state: JobState = RUNNING) -> JobProgress:
    error = JobError(code="BROKE", message="broke") if state is FAILED else None
    return JobProgress(job_id=job_id, seq=seq, state=state, producer="test", error=error)


def verdicts(folded) -> list[tuple[str, int, str]]:
    """(job, seq, verdict) of each log row (COPY rows: job_id, seq, ..., verdict, occurred_at)."""
    return [(row[0], row[1], row[-2]) for row in folded.log_rows]


def test_each_jobs_events_are_folded_in_sequence_whatever_order_they_came_in():
    events = [event("b", 2), event("a", 3, SUCCEEDED), event("b", 1), event("a", 2)]
    folded = fold(events, {"a": JobPosition(RUNNING, 1), "b": NEW_JOB})
    assert verdicts(folded) == [("a", 2, "applied"), ("a", 3, "applied"),
                                ("b", 1, "applied"), ("b", 2, "applied")]  # fmt: skip
    assert folded.positions() == {"a": JobPosition(SUCCEEDED, 3), "b": JobPosition(RUNNING, 2)}
    assert folded.ended == [("a", SUCCEEDED)]


def test_stale_and_final_events_are_logged_but_move_nothing():
    start = {"a": JobPosition(RUNNING, 5), "z": JobPosition(FAILED, 2)}
    folded = fold([event("a", 4), event("a", 5), event("z", 3)], start)
    assert verdicts(folded) == [("a", 4, Verdict.STALE.value), ("a", 5, Verdict.STALE.value),
                                ("z", 3, Verdict.FINAL.value)]  # fmt: skip
    assert folded.newest == {} and folded.ended == []
    assert folded.positions() == start
    assert folded.start == start and folded.start is not start  # its own copy


def test_jobs_never_seen_are_guessed_where_a_new_job_stands():
    folded = Whereabouts().fold_ahead([event("new", 1)])
    assert folded.start == {"new": NEW_JOB} == {"new": JobPosition(JobState.QUEUED, 0)}


def test_the_next_batch_is_folded_from_where_the_last_one_left_its_jobs():
    where = Whereabouts()
    where.fold_ahead([event("a", 1), event("a", 2), event("b", 1)])
    folded = where.fold_ahead([event("a", 3), event("c", 1)])
    assert folded.start == {"a": JobPosition(RUNNING, 2), "c": NEW_JOB}


def test_finished_jobs_are_forgotten():
    where = Whereabouts()
    where.fold_ahead([event("a", 1), event("a", 2, SUCCEEDED), event("b", 1, FAILED)])
    folded = where.fold_ahead([event("a", 3), event("b", 2)])
    assert folded.start == {"a": NEW_JOB, "b": NEW_JOB}  # a guess: the transaction refolds


def test_a_fold_the_transaction_redid_replaces_the_guess():
    where = Whereabouts()
    where.fold_ahead([event("a", 1)])
    where.learn(fold([event("a", 1)], {"a": JobPosition(RUNNING, 7)}))  # it stood elsewhere
    assert where.fold_ahead([event("a", 8)]).start == {"a": JobPosition(RUNNING, 7)}


def test_beyond_the_jobs_kept_it_forgets_them_all():
    where = Whereabouts()
    where.JOBS_KEPT = 3
    where.fold_ahead([event(f"j{i}", 1) for i in range(3)])
    assert where.fold_ahead([event("j0", 2)]).start == {"j0": JobPosition(RUNNING, 1)}
    where.fold_ahead([event("j3", 1)])  # the fourth job in flight
    assert where.fold_ahead([event("j1", 2)]).start == {"j1": NEW_JOB}


async def test_folding_ahead_lets_the_event_loop_run_every_slice_and_folds_alike() -> None:
    """The tracker folds ahead while the batch before is handled: in slices, so that batch's
    next statement waits for one slice, not the whole fold; the fold itself is the same."""
    events = [
        event(f"j{i % 7}", i // 7 + 1, SUCCEEDED if i >= 112 else RUNNING) for i in range(119)
    ]
    start = {f"j{i}": NEW_JOB for i in range(7)}
    turns: list[int] = []

    async def other_work() -> None:
        while True:
            turns.append(1)
            await asyncio.sleep(0)

    task = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    before = len(turns)
    folded = await fold_yielding(events, start, every=25)
    task.cancel()
    assert folded == fold(events, start)
    assert len(turns) - before == 119 // 25  # a turn after each slice of 25 but the last
