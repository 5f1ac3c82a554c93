"""The base every event contract shares: frozen, strict, versioned, identified and timestamped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

JobId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"),
    Field(
        description="Job id: the idempotency key of a job; letters, digits, '.', '_', ':', '-'.",
        examples=["job-3f2a9c1e7b4d"],
    ),
]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Contract(BaseModel):
    """A value carried inside an event: frozen and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class Event(Contract):
    """A fact published on a topic."""

    topic: ClassVar[str]

    schema_version: Literal[1] = Field(
        default=1,
        description="Version of this contract; a consumer refuses versions it does not know.",
    )
    event_id: UUID = Field(
        default_factory=uuid4,
        description="Unique id of this event; consumers use it to ignore redeliveries.",
    )
    occurred_at: datetime = Field(
        default_factory=utc_now, description="When the producer created the event (UTC)."
    )

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()
