"""Conversion of the old system's jobs into the new job model, in resumable batches.

Decisions: conversion leaves the legacy rows where they are and marks each in
`legacy_conversions`, so it never loses a row; unconvertible rows are recorded there with their
reason and are tried again by the next run (someone may have fixed their config). Each batch (keyset
by legacy id) commits its jobs rows, audit copies and conversion records in one transaction,
so a run killed at any point resumes with the first uncommitted batch and converts every row
exactly once. Rollback restores the legacy table from the audit copies, deletes the converted
jobs (and any progress they gathered since) and clears the records: the state before migration.

`python -m lorag_migration.conversion [--dry-run] [--rollback] [--batch-size N]` runs it
without the CLI (prints the report as JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any, Protocol

import psycopg

from lorag_core.db import migrations
from lorag_core.settings import Settings
from lorag_migration.adapters.legacy_store import LegacyStore
from lorag_migration.domain.legacy import Converted, Unconvertible, convert, id_taken
from lorag_migration.domain.report import ConversionReport

DEFAULT_BATCH_SIZE = 1000


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, rows: int) -> None: ...


class _Silent:
    def start(self, total: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass


def convert_legacy_jobs(
    dsn: str, *, batch_size: int = DEFAULT_BATCH_SIZE, dry_run: bool = False,
    progress: Progress | None = None,
) -> ConversionReport:  # fmt: skip
    """Convert every legacy row not converted yet (or, dry run, report what that would do)."""
    progress = progress or _Silent()
    report = ConversionReport(dry_run=dry_run, run_id=str(uuid.uuid4()))
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = LegacyStore(conn)
        conn.read_only = dry_run  # a dry run cannot write, whatever the code below does
        with store.exclusive():
            report.already_converted = store.count_converted()
            progress.start(store.count_not_converted())
            after: str | None = None
            while last := _one_batch(store, report, progress, after, batch_size):
                after = last
    return report


def _one_batch(
    store: LegacyStore, report: ConversionReport, progress: Progress, after: str | None, size: int
) -> str | None:
    """Convert one batch in one transaction; return the last legacy id seen, None when done."""
    with store.conn.transaction():
        rows = store.next_batch(after, size, lock=not report.dry_run)
        if not rows:
            return None
        results = [convert(row) for row in rows]
        done = [r for r in results if isinstance(r, Converted)]
        left = [r for r in results if isinstance(r, Unconvertible)]
        if report.dry_run:
            taken = store.taken_job_ids([c.job_id for c in done])
            left += [id_taken(c) for c in done if c.job_id in taken]
        else:
            left += store.save_batch(report.run_id, done, left)
        clashed = {u.legacy.id for u in left}
        report.add_converted([c for c in done if c.legacy.id not in clashed])
        report.add_unconvertible(left)
        report.batches += 1
    progress.advance(len(rows))
    return rows[-1].id


def rollback(dsn: str) -> dict[str, int]:
    """Restore the state before any conversion: legacy rows as audited, converted jobs gone."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = LegacyStore(conn)
        with store.exclusive():
            return store.rollback()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m lorag_migration.conversion")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--rollback", action="store_true")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    args = parser.parse_args(argv)
    dsn = Settings().postgres_dsn
    migrations.upgrade(dsn)
    result: Any
    if args.rollback:
        result = rollback(dsn)
    else:
        report = convert_legacy_jobs(dsn, batch_size=args.batch_size, dry_run=args.dry_run)
        result = report.as_dict()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
