"""The base every event contract shares: frozen, strict, versioned, identified and timestamped."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID, uuid4

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

SCHEMA_VERSION = 1
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

JobId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"),
    Field(
        description="Job id: the idempotency key of a job; letters, digits, '.', '_', ':', '-'.",
        examples=["job-3f2a9c1e7b4d"],
    ),
]


# Validation context key: the payload's text is known to be storable (see `storable_json`).
STORABLE_CHECKED = "lorag.storable_checked"


def storable_json(raw: bytes) -> bool:
    """True when JSON bytes cannot hold a NUL or a lone surrogate: in valid UTF-8 JSON both can
    only be written as \\u escapes, so bytes without any are storable without walking them."""
    return b"\\u" not in raw


def utc_now() -> datetime:
    return datetime.now(UTC)


def unstorable(value: Any, depth: int = 0) -> str | None:
    """A NUL or a lone surrogate anywhere in a payload: Postgres text and jsonb refuse both,
    so such an event could only fail in every consumer that records it, again and again."""
    if isinstance(value, str):
        if (bad := UNSTORABLE.search(value)) is not None:
            return "a NUL character" if bad.group() == "\x00" else "a lone UTF-16 surrogate"
    elif isinstance(value, dict) and depth < 32:
        for key, item in value.items():
            if found := unstorable(key, depth + 1) or unstorable(item, depth + 1):
                return found
    elif isinstance(value, list | tuple) and depth < 32:
        for item in value:
            if found := unstorable(item, depth + 1):
                return found
    return None


class Contract(BaseModel):
    """A value carried inside an event: frozen and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    # After the fields, not before: a "before" validator needs the input as Python objects, so
    # pydantic built a dict from the JSON and validated that, where it otherwise validates the
    # JSON as it parses it. A progress event of `bench events` took 8.8 us with it (at cc4a448)
    # and 3.3-3.8 us without: python -m timeit -s "from bench.events import progress_events;
    # from lorag_core.contracts import JobProgress; from lorag_core.contracts.base import
    # STORABLE_CHECKED as K; e = progress_events()[5].to_bytes()"
    # "JobProgress.model_validate_json(e, context={K: True})". A nested contract checks its own
    # fields; pydantic itself refuses a lone surrogate in a str field.
    @model_validator(mode="after")
    def _storable_text(self, info: ValidationInfo) -> Self:
        if info.context and info.context.get(STORABLE_CHECKED):
            return self  # the caller checked the raw JSON already (see `storable_json`)
        if (found := unstorable(self.__dict__)) is not None:
            raise ValueError(f"text may not contain {found}")
        return self


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
