"""`lorag migrate`: convert the old system's jobs into the new job model (or report, or undo).

The migration-service does the work; this command asks it, follows a real run's job in Postgres
with a progress bar (an admin command may read Postgres directly), and prints the report.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import typer
from psycopg.rows import dict_row
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from lorag_api import ServiceError, Unavailable
from lorag_api.base import ServiceUrls
from lorag_api.migration import Conversion, ConversionReport, Convert, MigrationClient
from lorag_cli.output import console, err_console, fail, print_json, print_table
from lorag_core.db import jobs
from lorag_core.settings import Settings

POLL_S = 0.3
START_HINT = (
    "start it with `lorag serve migration-service` (or `lorag up`), "
    "or point LORAG_MIGRATION_SERVICE_URL at it"
)


def migrate(
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would change; change none."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    batch_size: int = typer.Option(5000, min=1, max=100_000, help="Legacy rows per transaction."),
    rollback: bool = typer.Option(False, "--rollback", help="Undo all conversions from the audit."),
) -> None:
    """Convert legacy jobs (RAG, LORA, HYBRID, FINE_TUNING) into jobs; resumable and repeatable.

    The migration-service converts; a real run is a job of its own (`migration-…`), so
    `lorag jobs` follow it too.
    """
    settings, url = Settings(), ServiceUrls().migration_service_url
    try:
        if rollback:
            undone = asyncio.run(_rollback(url, settings.service_secret))
            _print_rollback(undone, json_out)
            return
        report = asyncio.run(
            _convert(url, settings, Convert(dry_run=dry_run, batch_size=batch_size))
        )
    except Unavailable as exc:
        if exc.message.startswith("cannot reach"):
            fail(f"the migration-service is not running at {url}", hint=START_HINT)
        fail(f"the migration-service failed: {exc.message}", hint=exc.hint)
    except ServiceError as exc:
        fail(exc.message, hint=exc.hint)
    if json_out:
        print_json(report.model_dump(mode="json"))
    else:
        _print_report(report)


async def _rollback(url: str, token: str) -> dict[str, int]:
    async with MigrationClient(url, token) as service:
        return (await service.rollback()).model_dump()


async def _convert(url: str, settings: Settings, request: Convert) -> ConversionReport:
    # A large table takes a while per batch under load: the answer comes when a dry run ends.
    async with MigrationClient(url, settings.service_secret, timeout=600) as service:
        run = await service.convert(request)
        if run.job_id is not None:
            err_console.print(f"conversion run: job {run.job_id} (`lorag jobs show {run.job_id}`)")
            run = await _follow(service, settings.postgres_dsn, run.job_id)
    if run.state == "FAILED":
        resume = "batches committed before the failure stay converted; `lorag migrate` resumes"
        fail(f"conversion {run.job_id} failed: {run.error}", hint=resume)
    assert run.report is not None, "an ended run carries its report"
    return run.report


async def _follow(service: MigrationClient, dsn: str, job_id: str) -> Conversion:
    """Show the job's progress (read from Postgres) until the service says the run ended."""
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TimeRemainingColumn())  # fmt: skip
    conn = await _connect(dsn)
    try:
        with Progress(*columns, console=err_console, transient=True) as progress:
            task = progress.add_task("converting legacy jobs", total=100)
            while (run := await service.conversion(job_id)).state == "RUNNING":
                job = await jobs.get_job(conn, job_id) if conn is not None else None
                if job is not None and job["percent"] is not None:
                    progress.update(task, completed=job["percent"])
                await asyncio.sleep(POLL_S)
            return run
    finally:
        if conn is not None:
            await conn.close()


async def _connect(dsn: str) -> psycopg.AsyncConnection[dict[str, Any]] | None:
    """Postgres for the progress bar; without it the run is followed through the service only."""
    try:
        return await psycopg.AsyncConnection.connect(dsn, autocommit=True, row_factory=dict_row)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        err_console.print(f"[yellow]no progress bar: cannot reach Postgres ({first})[/]")
        return None


def _print_rollback(undone: dict[str, int], json_out: bool) -> None:
    if json_out:
        print_json(undone)
    else:
        console.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in undone.items()))


def _print_report(report: ConversionReport) -> None:
    verb = "would convert" if report.dry_run else "converted"
    console.print(f"{verb} {report.converted} legacy job(s); {report.already_converted} converted "
                  f"before; {report.unconvertible_count} unconvertible")  # fmt: skip
    for title, counts in (("legacy type", report.by_type), ("legacy status", report.by_status),
                          ("new state", report.by_state)):  # fmt: skip
        if counts:
            print_table(f"by {title}", [title, "jobs"], sorted(counts.items()))
    if report.unconvertible:
        print_table(
            "unconvertible (left in legacy_training_jobs)",
            ["legacy id", "type", "status", "reason"],
            ([u.legacy_id, u.type, u.status, u.reason] for u in report.unconvertible),
        )
