"""The job state machine, in one place.

QUEUED -> VALIDATING -> RUNNING -> SUCCEEDED | FAILED | CANCELLED.
A terminal state is final and a state never goes backwards. Every progress event carries a
per-job sequence number, so a duplicate or a late event changes nothing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

_TERMINAL_RANK = 3
_RANKS = {
    "QUEUED": 0,
    "VALIDATING": 1,
    "RUNNING": 2,
    "SUCCEEDED": _TERMINAL_RANK,
    "FAILED": _TERMINAL_RANK,
    "CANCELLED": _TERMINAL_RANK,
}


class JobState(StrEnum):
    QUEUED = "QUEUED"
    VALIDATING = "VALIDATING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    # Plain attributes, set once per member: the tracker reads them for every progress event,
    # and a property (with a dict keyed by members, hashed in Python) cost 0.15 us a read.
    rank: int
    is_terminal: bool

    def __init__(self, value: str) -> None:
        self.rank = _RANKS[value]
        self.is_terminal = self.rank == _TERMINAL_RANK


class Verdict(StrEnum):
    """What happened to one progress event."""

    APPLIED = "applied"  # newest event: its state and figures now describe the job
    STALE = "stale"  # older than what the job already shows: kept in the log only
    FINAL = "final"  # arrived after a terminal state: kept in the log only


class JobPosition(NamedTuple):
    """Where a job stands: its state and the sequence number of the last event applied (a
    tuple: the tracker makes one per progress event, and compares a batch's worth)."""

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
