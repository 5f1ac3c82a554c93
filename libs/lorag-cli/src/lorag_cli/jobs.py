"""`lorag jobs ls | show | cancel`: read and act on the jobs the tracker projects."""

from __future__ import annotations

from typing import Any

import typer

from lorag_cli.client import database, publish, run
from lorag_cli.output import console, fail, print_json, print_table
from lorag_core.contracts import JobCancelRequested
from lorag_core.db import jobs as store
from lorag_core.domain.job_state import JobState
from lorag_core.settings import Settings

app = typer.Typer(help="List, inspect and cancel jobs.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


@app.command("ls")
def list_jobs(
    state: JobState | None = typer.Option(None, help="Only jobs in this state."),
    training_type: str | None = typer.Option(
        None, "--type", help="Only jobs of this effective type."
    ),
    owner: str | None = typer.Option(None, help="Only jobs of this owner."),
    limit: int = typer.Option(50, min=1, max=10_000, help="At most this many, newest first."),
    before: str | None = typer.Option(
        None,
        "--before",
        metavar="JOB_ID",
        help="Next page: the jobs listed after JOB_ID, the last job of the previous page.",
    ),
    json_out: bool = JsonOpt,
) -> None:
    """List jobs, newest first; page on with --before."""
    settings = Settings()

    async def fetch() -> list[dict[str, Any]] | None:
        async with database(settings) as conn:
            try:
                return await store.list_jobs(
                    conn, owner=owner, state=state, training_type=training_type, limit=limit,
                    before=before,
                )  # fmt: skip
            except LookupError:
                return None

    rows = run(fetch(), settings)
    if rows is None:
        fail(
            f"no job {before!r}{f' of {owner}' if owner else ''} to page from",
            hint="--before takes a job id from the previous page of `lorag jobs ls`",
        )
    if json_out:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} job(s)",
        ["job", "type", "state", "stage", "%", "owner", "created"],
        (
            [
                r["job_id"],
                _type_label(r),
                r["state"],
                r["stage"],
                _pct(r["percent"]),
                r["owner"],
                r["created_at"].strftime("%Y-%m-%d %H:%M:%S"),
            ]
            for r in rows
        ),
    )
    if len(rows) == limit:  # the table may shorten ids; the next page's cursor is printed whole
        console.print(f"[dim]next page:[/] --before {rows[-1]['job_id']}", soft_wrap=True)


@app.command("show")
def show_job(job_id: str, json_out: bool = JsonOpt) -> None:
    """Show one job with its progress log."""
    settings = Settings()

    async def fetch() -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        async with database(settings) as conn:
            return await store.get_job(conn, job_id), await store.progress_log(conn, job_id)

    job, log = run(fetch(), settings)
    if job is None:
        fail(f"no job {job_id!r}", hint="`lorag jobs ls` lists the jobs")
    if json_out:
        print_json({**job, "progress": log})
        return
    console.print(
        f"[bold]{job['job_id']}[/]  {_type_label(job)}  [bold]{job['state']}[/]"
        f"  owner={job['owner']}  trace={job['trace_id'] or '-'}"
    )
    if job["error"]:
        console.print(f"[red]{job['error']['code']}[/]: {job['error']['message']}")
    if job["result"]:
        console.print(f"result: {job['result']}")
    if job["cancel_requested_at"]:
        console.print(
            f"cancel requested at {job['cancel_requested_at']:%Y-%m-%d %H:%M:%S}: "
            f"{job['cancel_reason']}"
        )
    print_table(
        "progress",
        ["seq", "state", "stage", "%", "verdict", "by", "message"],
        (
            [
                p["seq"],
                p["state"],
                p["stage"],
                _pct(p["percent"]),
                p["verdict"],
                p["producer"],
                p["message"],
            ]
            for p in log
        ),
    )


@app.command("cancel")
def cancel_job(
    job_id: str,
    reason: str = typer.Option("cancelled by user", help="Why; kept on the job."),
    json_out: bool = JsonOpt,
) -> None:
    """Ask the service running a job to stop it; the job ends CANCELLED."""
    settings = Settings()

    async def act() -> dict[str, Any] | None:
        async with database(settings) as conn:
            job = await store.get_job(conn, job_id)
        if job is not None and not JobState(job["state"]).is_terminal:
            await publish(settings, JobCancelRequested(job_id=job_id, reason=reason))
        return job

    job = run(act(), settings)
    if job is None:
        fail(f"no job {job_id!r}", hint="`lorag jobs ls` lists the jobs")
    if JobState(job["state"]).is_terminal:
        fail(f"job {job_id} already ended {job['state']}; there is nothing to cancel", code=2)
    if json_out:
        print_json({"job_id": job_id, "cancel_requested": True, "state": job["state"]})
    else:
        console.print(f"cancellation of {job_id} requested; `lorag jobs show {job_id}` follows it")


def _type_label(row: dict[str, Any]) -> str:
    effective, requested = row.get("effective_type"), row.get("requested_type")
    if effective and requested and requested != effective:
        return f"{effective} (as {requested})"
    return effective or "?"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"
