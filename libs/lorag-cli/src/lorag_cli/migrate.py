"""`lorag migrate`: convert the old system's jobs into the new job model (or report, or undo)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lorag_cli.output import console, err_console, fail, print_json, print_table
from lorag_cli.run_as_job import JobReporter
from lorag_core.db import migrations
from lorag_core.settings import Settings
from lorag_migration import conversion
from lorag_migration.adapters.legacy_store import ConversionBusy
from lorag_migration.domain.report import ConversionReport


class _Bar:
    """The engine's progress sink as a rich bar on stderr, so --json output stays clean."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.task = progress, progress.add_task("converting legacy jobs", total=None)

    def start(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def advance(self, rows: int) -> None:
        self.progress.advance(self.task, rows)


def migrate(
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would change; change none."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    batch_size: int = typer.Option(1000, min=1, max=100_000, help="Legacy rows per transaction."),
    rollback: bool = typer.Option(False, "--rollback", help="Undo all conversions from the audit."),
) -> None:
    """Convert legacy jobs (RAG, LORA, HYBRID, FINE_TUNING) into jobs; resumable and repeatable.

    A real run is reported as a job of its own (`migration-…`), so `lorag jobs` follow it.
    """
    settings = Settings()
    dsn = settings.postgres_dsn
    try:
        migrations.upgrade(dsn)
        if rollback:
            _print_rollback(conversion.rollback(dsn), json_out)
            return
        report = _convert(settings, batch_size, dry_run)
    except psycopg.OperationalError as exc:
        fail(f"cannot reach Postgres: {str(exc).strip().splitlines()[0]}",
             hint="start the local servers with `lorag up`, or set LORAG_POSTGRES_DSN")  # fmt: skip
    except (ConversionBusy, migrations.MigrationError) as exc:
        fail(str(exc))
    if json_out:
        print_json(report.as_dict())
    else:
        _print_report(report)


def _convert(settings: Settings, batch_size: int, dry_run: bool) -> ConversionReport:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())  # fmt: skip
    reporter = None if dry_run else _job_reporter(settings)
    try:
        with Progress(*columns, console=err_console, transient=True) as progress:
            sinks = [_Bar(progress), *([reporter] if reporter else [])]
            report = conversion.convert_legacy_jobs(
                settings.postgres_dsn, batch_size=batch_size, dry_run=dry_run,
                progress=_Fanout(sinks),
            )  # fmt: skip
        if reporter:
            reporter.succeed({
                "converted": report.converted,
                "unconvertible": len(report.unconvertible),
                "already_converted": report.already_converted,
            })  # fmt: skip
        return report
    except Exception as exc:
        if reporter:
            reporter.fail(str(exc))
        raise
    finally:
        if reporter:
            reporter.close()


def _job_reporter(settings: Settings) -> JobReporter | None:
    """The run as a job on Kafka; the conversion goes on without it when Kafka is down."""
    job_id = f"migration-{uuid.uuid4().hex[:12]}"
    try:
        reporter = JobReporter(settings, job_id, stage="converting")
    except Exception as exc:
        err_console.print(f"[yellow]not reporting the run as a job ({exc}); converting anyway[/]")
        return None
    err_console.print(f"conversion run: job {job_id} (`lorag jobs show {job_id}`)")
    return reporter


class _Fanout:
    """Several progress sinks as one."""

    def __init__(self, sinks: list[Any]) -> None:
        self.sinks = sinks

    def start(self, total: int) -> None:
        for sink in self.sinks:
            sink.start(total)

    def advance(self, rows: int) -> None:
        for sink in self.sinks:
            sink.advance(rows)


def _print_rollback(undone: dict[str, int], json_out: bool) -> None:
    if json_out:
        print_json(undone)
    else:
        console.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in undone.items()))


def _print_report(report: ConversionReport) -> None:
    verb = "would convert" if report.dry_run else "converted"
    console.print(f"{verb} {report.converted} legacy job(s); {report.already_converted} converted "
                  f"before; {len(report.unconvertible)} unconvertible")  # fmt: skip
    for title, counts in (("legacy type", report.by_type), ("legacy status", report.by_status),
                          ("new state", report.by_state)):  # fmt: skip
        if counts:
            print_table(f"by {title}", [title, "jobs"], sorted(counts.items()))
    if report.unconvertible:
        print_table(
            "unconvertible (left in legacy_training_jobs)",
            ["legacy id", "type", "status", "reason"],
            ([u["legacy_id"], u["type"], u["status"], u["reason"]] for u in report.unconvertible),
        )
