"""Conversion of the old system's jobs into the new job model, in resumable batches.

Decisions: conversion leaves the legacy rows where they are and marks each in
`legacy_conversions`, so it never loses a row; unconvertible rows are recorded there with their
reason and are tried again by the next run (someone may have fixed their config). Each batch (keyset
by legacy id) commits its jobs rows and conversion records in one transaction, holding writers off
the legacy table meanwhile, so a run killed at any point resumes with the first uncommitted batch
and converts every row exactly once. A converted row is copied to `legacy_job_audit` by a trigger
when it first changes (an unchanged row is its own audit copy). Rollback restores the rows that
changed from those copies, deletes the converted jobs (and any progress they gathered since) and
clears the records: the state before migration.

`python -m lorag_migration.conversion [--dry-run] [--rollback] [--batch-size N]` runs it
without the CLI (prints the report as JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg

from lorag_core.db import migrations
from lorag_core.settings import Settings
from lorag_migration.adapters.legacy_store import LegacyStore, PlainBatch
from lorag_migration.domain.legacy import (
    Converted,
    LegacyJob,
    Unconvertible,
    convert,
    id_taken,
)
from lorag_migration.domain.report import ConversionReport

# Planning the batch statement costs the same at any size: 5,000 rows took about a quarter less
# server CPU than 1,000 (20,000: no better), and writers wait at most one batch.
DEFAULT_BATCH_SIZE = 5000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a clash's report line shows no dates


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
            with store.batches_durable_at_the_end(enabled=not dry_run):
                while last := _one_batch(store, report, progress, after, batch_size):
                    after = last
    return report


def _one_batch(
    store: LegacyStore, report: ConversionReport, progress: Progress, after: str | None, size: int
) -> str | None:
    """Convert one batch in one transaction; return the last legacy id seen, None when done.

    The server converts the plainly valid rows in one statement; only the rows it flags as
    doubtful come here for the pydantic conversion, which judges them and writes its reasons.
    The report takes the batch in only once its transaction has committed.
    """
    try:
        batch = _convert_batch(store, report, after, size, fast=True)
    except psycopg.errors.UniqueViolation:
        # Another job holds one of the batch's job ids: redo it the careful way, which records
        # that row as unconvertible instead of failing (rare: nothing else makes legacy- ids
        # but the wire path for legacy-shaped requests).
        batch = _convert_batch(store, report, after, size, fast=False)
    if batch is None:
        return None
    plain, converted, left = batch
    for legacy_type, status, state, n in plain.counts:
        report.add_counts(legacy_type, status, state, n)
    report.add_converted(converted)
    report.add_unconvertible(sorted(left, key=lambda u: u.legacy.id))
    report.batches += 1
    progress.advance(plain.rows)
    return plain.last_id


def _convert_batch(
    store: LegacyStore, report: ConversionReport, after: str | None, size: int, *, fast: bool
) -> tuple[PlainBatch, list[Converted], list[Unconvertible]] | None:
    """One batch's transaction: the plain rows in SQL, the doubtful ones through pydantic."""
    dry = report.dry_run
    with store.conn.transaction():
        if not dry:
            store.hold_legacy_rows()
        plain = store.convert_plain_rows(after, size, report.run_id, dry_run=dry, fast=fast)
        if plain.last_id is None:
            return None
        left = [_clash(*c) for c in plain.clashes]
        converted: list[Converted] = []
        if plain.doubtful:
            rows = store.doubtful_rows(after, plain.last_id)
            results = [convert(row) for row in rows]
            done = [r for r in results if isinstance(r, Converted)]
            unconvertible = [r for r in results if isinstance(r, Unconvertible)]
            if dry:
                taken = store.taken_job_ids([c.job_id for c in done])
                unconvertible += [id_taken(c) for c in done if c.job_id in taken]
            else:
                unconvertible += store.save_batch(report.run_id, done, unconvertible)
            clashed = {u.legacy.id for u in unconvertible}
            converted = [c for c in done if c.legacy.id not in clashed]
            left += unconvertible
    return plain, converted, left


def _clash(legacy_id: str, legacy_type: str, status: str, job_id: str) -> Unconvertible:
    """A plainly valid row whose job id another job holds, as the report lists it."""
    legacy = LegacyJob(legacy_id, None, legacy_type, status, None, None, _EPOCH, _EPOCH)
    return Unconvertible(legacy, f"job id {job_id} already belongs to another job")


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
