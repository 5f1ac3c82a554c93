"""The job state machine, in one place.

QUEUED -> VALIDATING -> RUNNING -> SUCCEEDED | FAILED | CANCELLED.
A terminal state is final and a state never goes backwards. Every progress event carries a
per-job sequence number, so a duplicate or a late event changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "QUEUED"
    VALIDATING = "VALIDATING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def is_terminal(self) -> bool:
        return self.rank == _TERMINAL_RANK


_TERMINAL_RANK = 3
_RANK = {
    JobState.QUEUED: 0,
    JobState.VALIDATING: 1,
    JobState.RUNNING: 2,
    JobState.SUCCEEDED: _TERMINAL_RANK,
    JobState.FAILED: _TERMINAL_RANK,
    JobState.CANCELLED: _TERMINAL_RANK,
}


class Verdict(StrEnum):
    """What happened to one progress event."""

    APPLIED = "applied"  # newest event: its state and figures now describe the job
    STALE = "stale"  # older than what the job already shows: kept in the log only
    FINAL = "final"  # arrived after a terminal state: kept in the log only


@dataclass(frozen=True)
class JobPosition:
    """Where a job stands: its state and the sequence number of the last event applied."""

    state: JobState = JobState.QUEUED
    seq: int = 0

    def advance(self, seq: int, state: JobState) -> tuple[JobPosition, Verdict]:
        """Fold one progress event into the position; never moves backwards."""
        if self.state.is_terminal:
            return self, Verdict.FINAL
        if seq <= self.seq:
            return self, Verdict.STALE
        # A newer event may still report an earlier state (a slow stage reporting late):
        # its figures count, its state does not pull the job back.
        new_state = state if state.rank >= self.state.rank else self.state
        return JobPosition(new_state, seq), Verdict.APPLIED
