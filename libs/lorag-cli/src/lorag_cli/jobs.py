"""`lorag jobs ls | show | cancel`: the caller's jobs, through the gateway."""

from __future__ import annotations

import os
from typing import Any

import typer

from lorag_api.errors import Conflict, ServiceError
from lorag_cli.gateway import Gateway, explain, refusals, segment
from lorag_cli.output import console, fail, print_json, print_table
from lorag_core.domain.job_state import JobState
from lorag_core.settings import LOCAL_TRACE_UI_URL

app = typer.Typer(help="List, inspect and cancel jobs.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


@app.command("ls")
def list_jobs(
    state: JobState | None = typer.Option(None, help="Only jobs in this state."),
    training_type: str | None = typer.Option(
        None, "--type", help="Only jobs of this effective type."
    ),
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many, newest first."),
    before: str | None = typer.Option(
        None,
        "--before",
        metavar="JOB_ID",
        help="Next page: the jobs listed after JOB_ID, the last job of the previous page.",
    ),
    json_out: bool = JsonOpt,
) -> None:
    """List your jobs, newest first; page on with --before."""
    with refusals("cannot list jobs: "):
        rows = Gateway().get(
            "/api/jobs", state=state.value if state else None, type=training_type, limit=limit,
            before=before,
        )  # fmt: skip
    if json_out:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} job(s)",
        ["job", "type", "state", "stage", "%", "created"],
        ([r["job_id"], _type_label(r), r["state"], r["stage"], _pct(r["percent"]),
          _when(r["created_at"])] for r in rows),
    )  # fmt: skip
    if len(rows) == limit:  # the table may shorten ids; the next page's cursor is printed whole
        console.print(f"[dim]next page:[/] --before {rows[-1]['job_id']}", soft_wrap=True)


def trace_url(trace_id: str) -> str:
    """Where the job's trace reads: LORAG_OTEL_TRACE_UI_URL (the local Jaeger by default)."""
    base = os.environ.get("LORAG_OTEL_TRACE_UI_URL") or LOCAL_TRACE_UI_URL
    return f"{base.rstrip('/')}/trace/{trace_id}"


@app.command("show")
def show_job(job_id: str, json_out: bool = JsonOpt) -> None:
    """Show one job with its progress log."""
    with refusals():
        job = Gateway().get(f"/api/jobs/{segment(job_id)}")
    if json_out:
        print_json(job)
        return
    console.print(
        f"[bold]{job['job_id']}[/]  {_type_label(job)}  [bold]{job['state']}[/]"
        f"  owner={job['owner']}  trace={job['trace_id'] or '-'}"
    )
    if job["trace_id"]:
        console.print(f"trace: {trace_url(job['trace_id'])}", soft_wrap=True)
    if job.get("worker"):  # the instance that claimed it last: after a takeover, the survivor
        console.print(f"worker: {job['worker']}")
    if job["error"]:
        console.print(f"[red]{job['error']['code']}[/]: {job['error']['message']}")
    if job["result"]:
        console.print(f"result: {job['result']}")
    if job["cancel_requested_at"]:
        console.print(
            f"cancel requested at {_when(job['cancel_requested_at'])}: {job['cancel_reason']}"
        )
    print_table(
        "progress",
        ["seq", "state", "stage", "%", "verdict", "by", "message"],
        ([p["seq"], p["state"], p["stage"], _pct(p["percent"]), p["verdict"], p["producer"],
          p["message"]] for p in job["progress"]),
    )  # fmt: skip


@app.command("cancel")
def cancel_job(
    job_id: str,
    reason: str = typer.Option("cancelled by user", help="Why; kept on the job."),
    json_out: bool = JsonOpt,
) -> None:
    """Ask the service running a job to stop it; the job ends CANCELLED."""
    try:
        answer = Gateway().post(f"/api/jobs/{segment(job_id)}/cancel", {"reason": reason})
    except Conflict as exc:  # it already ended: nothing to do, and a script can tell
        fail(exc.message, code=2)
    except ServiceError as exc:
        explain(exc)
    if json_out:
        print_json(answer)
    else:
        console.print(f"cancellation of {job_id} requested; `lorag jobs show {job_id}` follows it")


def _type_label(row: dict[str, Any]) -> str:
    effective, requested = row.get("effective_type"), row.get("requested_type")
    if effective and requested and requested != effective:
        return f"{effective} (as {requested})"
    return effective or "?"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def _when(stamp: str | None) -> str:
    return "" if not stamp else stamp[:19].replace("T", " ")
