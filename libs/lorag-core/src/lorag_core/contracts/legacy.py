"""The payload shape the old system published on `job.requested`, recognised on the wire.

The old system sent `{"id", "type", "config", ...}` with a free-form config. Such a message is
not a `JobRequested`; the migration-service normalises it into one (same job, new contract) and
publishes that, so every other consumer skips the original instead of dead-lettering it.
"""

from __future__ import annotations

from typing import Any

LEGACY_REQUEST_KEYS = frozenset({"id", "type", "config"})


def is_legacy_request(data: dict[str, Any]) -> bool:
    """True for the old system's request shape (and never for a current JobRequested)."""
    return data.keys() >= LEGACY_REQUEST_KEYS and "training_type" not in data
