"""What a conversion run did, or (dry run) would do: the same shape either way, so they compare."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lorag_migration.domain.legacy import Converted, Unconvertible


@dataclass
class ConversionReport:
    """Counts per legacy type, legacy status and new state, and every unconvertible row."""

    dry_run: bool
    run_id: str
    already_converted: int = 0
    batches: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    by_state: Counter[str] = field(default_factory=Counter)
    unconvertible: list[dict[str, str]] = field(default_factory=list)

    @property
    def converted(self) -> int:
        return sum(self.by_type.values())

    def add_converted(self, done: list[Converted]) -> None:
        for c in done:
            self.by_type[c.legacy.type] += 1
            self.by_status[c.legacy.status] += 1
            self.by_state[c.state.value] += 1

    def add_counts(self, legacy_type: str, status: str, state: str, rows: int) -> None:
        """Rows the server converted, counted by the same keys as `add_converted`."""
        self.by_type[legacy_type] += rows
        self.by_status[status] += rows
        self.by_state[state] += rows

    def add_unconvertible(self, left: list[Unconvertible]) -> None:
        self.unconvertible.extend(
            {"legacy_id": u.legacy.id, "type": u.legacy.type, "status": u.legacy.status,
             "reason": u.reason} for u in left
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run, "run_id": self.run_id, "batches": self.batches,
            "already_converted": self.already_converted, "converted": self.converted,
            "by_type": dict(sorted(self.by_type.items())),
            "by_status": dict(sorted(self.by_status.items())),
            "by_state": dict(sorted(self.by_state.items())),
            "unconvertible_count": len(self.unconvertible), "unconvertible": self.unconvertible,
        }  # fmt: skip

    def outcome(self) -> dict[str, Any]:
        """The figures a dry run and the real run after it must agree on."""
        shown = self.as_dict()
        return {k: v for k, v in shown.items() if k not in ("dry_run", "run_id", "batches")}
