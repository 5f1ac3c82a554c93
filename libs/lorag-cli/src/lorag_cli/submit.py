"""`lorag submit TYPE --dataset PATH`: upload the dataset, publish `job.requested`, maybe wait."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lorag_cli.client import database, publish, run
from lorag_cli.output import console, fail, print_json
from lorag_core.contracts import DatasetRef, JobRequested
from lorag_core.contracts.jobs import PARAMETERS_BY_TYPE
from lorag_core.db import jobs as store
from lorag_core.domain.job_state import JobState
from lorag_core.domain.training_types import parse_training_type, resolve
from lorag_core.settings import Settings
from lorag_core.storage import ObjectStore

DATASETS_BUCKET = "lorag-datasets"
POLL_S = 0.25


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """['chunk_tokens=128', 'rag.kb=docs'] -> {'chunk_tokens': 128, 'rag': {'kb': 'docs'}}."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {pair!r} is not KEY=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw  # plain words need no quotes
        *parents, leaf = key.split(".")
        node = params
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return params


def upload_dataset(objects: ObjectStore, job_id: str, path: Path) -> str:
    """Copy a local file or folder to object storage; services never read the submitter's disk."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    if not files:
        raise ValueError(f"dataset {path} holds no files")
    base = path.parent if path.is_file() else path
    for file in files:
        objects.put_file(DATASETS_BUCKET, f"{job_id}/{file.relative_to(base).as_posix()}", file)
    return f"s3://{DATASETS_BUCKET}/{job_id}/" + (path.name if path.is_file() else "")


def submit(
    training_type: str = typer.Argument(
        ...,
        help="EXTERNAL_RAG, LOCAL_LORA, LOCAL_FINE_TUNING, "
        "EXTERNAL_HYBRID, LOCAL_HYBRID (legacy RAG, LORA, HYBRID, FINE_TUNING).",
    ),
    dataset: list[str] = typer.Option(
        ..., "--dataset", "-d", help="Local file or folder, or s3:// URI (repeatable)."
    ),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="KEY=VALUE parameter of the type (repeatable)."
    ),
    owner: str = typer.Option("default", envvar="LORAG_OWNER", help="Tenant that owns the job."),
    minion: str | None = typer.Option(None, help="Minion this job trains."),
    wait: bool = typer.Option(False, "--wait", help="Show progress until the job ends."),
    timeout: float = typer.Option(3600, help="With --wait: give up after this many seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Submit a training job and print its id."""
    try:
        requested = parse_training_type(training_type)
    except ValueError as exc:
        fail(str(exc))
    effective = resolve(requested).effective
    try:
        raw_params = parse_params(param)
        parameters = (
            PARAMETERS_BY_TYPE[effective].model_validate(raw_params) if raw_params else None
        )
    except (ValueError, ValidationError) as exc:
        fail(
            f"invalid parameters for {effective.value}: {exc}",
            hint="valid keys: "
            + ", ".join(k for k in PARAMETERS_BY_TYPE[effective].model_fields if k != "kind"),
        )
    settings = Settings()
    job_id = f"job-{uuid.uuid4().hex[:12]}"
    refs = []
    for item in dataset:
        if item.startswith("s3://"):
            refs.append(DatasetRef(uri=item))
            continue
        path = Path(item).expanduser()
        if not path.exists():
            fail(
                f"dataset {item} does not exist",
                hint="give a local file or folder, or an s3:// URI",
            )
        try:
            refs.append(
                DatasetRef(uri=upload_dataset(ObjectStore.from_settings(settings.s3), job_id, path))
            )
        except Exception as exc:  # the S3 SDK raises several unrelated types
            fail(f"could not upload {item}: {exc}", hint="is the S3 server up? `lorag status`")
    event = JobRequested(
        job_id=job_id,
        training_type=requested,
        owner=owner,
        minion_id=minion,
        datasets=tuple(refs),
        parameters=parameters,
    )
    run(publish(settings, event), settings)
    if not wait:
        print_json({"job_id": job_id, "state": "QUEUED"}) if json_out else print(job_id)
        return
    job = run(_watch(settings, job_id, timeout, quiet=json_out), settings)
    if json_out:
        print_json(job)
    else:
        _print_outcome(job)
    if job["state"] != JobState.SUCCEEDED:
        raise typer.Exit(1)


async def _watch(settings: Settings, job_id: str, timeout: float, *, quiet: bool) -> dict[str, Any]:
    """Poll the job until it ends, drawing a progress bar unless quiet."""
    deadline = time.monotonic() + timeout
    progress = Progress(
        TextColumn("[bold]{task.fields[state]}[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[eta]}"),
        console=console,
        disable=quiet,
    )
    with progress:
        task = progress.add_task(job_id, total=100, state="QUEUED", eta="")
        async with database(settings) as conn:
            while True:
                job = await store.get_job(conn, job_id)
                if job is not None:
                    eta = f"eta {job['eta_seconds']:.0f}s" if job["eta_seconds"] else ""
                    progress.update(
                        task,
                        completed=job["percent"] or 0,
                        state=job["state"],
                        description=f"{job_id} {job['stage'] or ''}",
                        eta=eta,
                    )
                    if JobState(job["state"]).is_terminal:
                        return {**job, "progress": await store.progress_log(conn, job_id)}
                if time.monotonic() > deadline:
                    fail(
                        f"job {job_id} did not end within {timeout:.0f}s (it goes on)",
                        hint=f"`lorag jobs show {job_id}`; is the service for its type running?",
                    )
                await asyncio.sleep(POLL_S)


def _print_outcome(job: dict[str, Any]) -> None:
    colour = {"SUCCEEDED": "green", "FAILED": "red"}.get(job["state"], "yellow")
    console.print(f"[{colour}]{job['job_id']} {job['state']}[/] as {job['effective_type']}")
    if job["error"]:
        console.print(f"[red]{job['error']['code']}[/]: {job['error']['message']}")
    if job["result"]:
        console.print(job["result"])
