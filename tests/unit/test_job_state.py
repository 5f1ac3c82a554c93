"""The job state machine: terminal is final, never backwards, duplicates and reordering harmless."""

import random

import pytest

from lorag_core.domain.job_state import JobPosition, JobState, Verdict

LIFECYCLE = [
    (1, JobState.VALIDATING),
    (2, JobState.RUNNING),
    (3, JobState.RUNNING),
    (4, JobState.RUNNING),
    (5, JobState.SUCCEEDED),
]


def fold(events):
    position = JobPosition()
    for seq, state in events:
        position, _ = position.advance(seq, state)
    return position


def test_in_order_lifecycle_ends_succeeded():
    assert fold(LIFECYCLE) == JobPosition(JobState.SUCCEEDED, 5)


@pytest.mark.parametrize("seed", range(50))
def test_any_order_with_duplicates_reaches_the_same_end(seed):
    rng = random.Random(seed)
    events = LIFECYCLE + rng.choices(LIFECYCLE, k=6)
    rng.shuffle(events)
    assert fold(events).state is JobState.SUCCEEDED


def test_terminal_is_final():
    done = JobPosition(JobState.FAILED, 4)
    after, verdict = done.advance(9, JobState.RUNNING)
    assert after == done and verdict is Verdict.FINAL
    after, verdict = done.advance(10, JobState.SUCCEEDED)
    assert after.state is JobState.FAILED


def test_late_event_is_stale_and_never_pulls_back():
    running = JobPosition(JobState.RUNNING, 4)
    assert running.advance(3, JobState.VALIDATING) == (running, Verdict.STALE)
    assert running.advance(4, JobState.RUNNING) == (running, Verdict.STALE)
    newer_but_earlier_state, verdict = running.advance(5, JobState.VALIDATING)
    assert verdict is Verdict.APPLIED
    assert newer_but_earlier_state == JobPosition(JobState.RUNNING, 5)


def test_only_three_terminal_states():
    assert {s for s in JobState if s.is_terminal} == {
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.CANCELLED,
    }
