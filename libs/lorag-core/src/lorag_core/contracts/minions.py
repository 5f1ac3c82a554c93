"""Contracts around minions: the XP a finished job earns, for an XP system to consume."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from lorag_core.contracts.base import Event, JobId
from lorag_core.domain.training_types import TrainingType


class MinionXpEarned(Event):
    """A job finished and its minion learned: the work done and the improvement measured."""

    topic: ClassVar[str] = "minion.xp"

    minion_id: str = Field(max_length=128, description="The minion that earned the XP.")
    job_id: JobId
    training_type: TrainingType = Field(description="Effective type of the finished job.")
    work: dict[str, float] = Field(
        description="Measured work: chunks embedded, tokens trained, seconds spent…"
    )
    improvement: dict[str, float] = Field(
        description="Measured improvement: best variant score minus the base model's, hit rate…"
    )
    xp: int = Field(ge=0, description="XP points: a suggestion derived from work and improvement.")
