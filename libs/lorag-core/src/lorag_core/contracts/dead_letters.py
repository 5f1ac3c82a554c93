"""Contract of dead letters: a message a consumer could not handle, kept whole with the reason."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from lorag_core.contracts.base import Event

DEAD_LETTER_SUFFIX = ".dlq"


def dead_letter_topic(topic: str) -> str:
    """The dead-letter topic of an input topic."""
    return f"{topic}{DEAD_LETTER_SUFFIX}"


class DeadLettered(Event):
    """A message was set aside instead of handled; the consumer went on with the next one."""

    topic: ClassVar[str] = "*.dlq"

    original_topic: str = Field(description="Topic the message came from.")
    partition: int = Field(ge=0, description="Partition it came from.")
    offset: int = Field(ge=0, description="Offset it had.")
    key: str | None = Field(default=None, description="Its key, as text (base64 if not UTF-8).")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Its headers, as text (base64 if not UTF-8)."
    )
    payload_base64: str = Field(description="The original payload, byte for byte, in base64.")
    id: int | None = Field(
        default=None,
        description="Its id for `lorag dlq show|replay` (null where no ledger was kept).",
    )
    consumer: str = Field(
        description="Consumer group that refused it first; one letter is published per "
        "record, whichever groups refuse it (`lorag dlq show` names them all)."
    )
    reason_code: str = Field(
        description="Why: NOT_JSON, INVALID_CONTRACT, UNKNOWN_SCHEMA_VERSION, TOO_LARGE, "
        "HANDLER_FAILED (failed every attempt), CONSUMER_CRASHED (its consumer died every "
        "attempt), LEGACY_UNCONVERTIBLE.",
        examples=["INVALID_CONTRACT"],
    )
    reason: str = Field(max_length=8000, description="The error, for people.")
    attempts: int = Field(ge=1, description="How many times the consumer tried.")
