"""`lorag submit TYPE --dataset PATH`: upload through the gateway, submit, maybe wait."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel, ValidationError
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lorag_cli.gateway import Gateway, refusals, segment
from lorag_cli.output import console, fail, print_json
from lorag_core.contracts.jobs import PARAMETERS_BY_TYPE
from lorag_core.domain.job_state import JobState
from lorag_core.domain.training_types import parse_training_type, resolve

POLL_S = 0.25
FILE_MARK = "x-lorag-file"  # a parameter naming a file, which the CLI uploads like a dataset


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


def nested_form(model: type[BaseModel], params: dict[str, Any]) -> list[str]:
    """For keys a parameter group holds but the top level does not: the dotted form to use."""
    groups = {
        name: field.annotation
        for name, field in model.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    }
    hints = []
    for key in params:
        if key in model.model_fields:
            continue
        owners = [g for g, sub in groups.items() if key in sub.model_fields]
        hints += [f"--param {g}.{key}={json.dumps(params[key])}" for g in owners]
    return hints


def file_params(
    model: type[BaseModel], params: dict[str, Any], path: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Where in `params` a parameter marked as a file is set (nested groups included)."""
    found: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        value = params.get(name)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get(FILE_MARK) and isinstance(value, str):
            found.append((*path, name))
        elif (
            isinstance(value, dict)
            and isinstance(field.annotation, type)
            and issubclass(field.annotation, BaseModel)
        ):
            found += file_params(field.annotation, value, (*path, name))
    return found


def local_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())


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
        [],
        "--param",
        "-p",
        help="KEY=VALUE parameter of the type (repeatable; a hybrid's stages: rag.KEY, lora.KEY). "
        "A local file named by a file parameter (eval_file) is uploaded.",
    ),
    minion: str | None = typer.Option(None, help="Minion this job trains."),
    wait: bool = typer.Option(False, "--wait", help="Show progress until the job ends."),
    timeout: float = typer.Option(3600, help="With --wait: give up after this many seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Submit a training job (as the owner of your token) and print its id."""
    try:
        effective = resolve(parse_training_type(training_type)).effective
        raw_params = parse_params(param)
    except ValueError as exc:
        fail(str(exc))
    model = PARAMETERS_BY_TYPE[effective]
    if hints := nested_form(model, raw_params):
        fail(
            f"{effective.value} takes its stages' parameters nested, not flat",
            hint="use " + "; ".join(hints),
        )
    try:
        model.model_validate(raw_params)
    except ValidationError as exc:
        fail(
            f"invalid parameters for {effective.value}: {exc}",
            hint="valid keys: " + ", ".join(k for k in model.model_fields if k != "kind"),
        )
    gateway = Gateway()
    for where in file_params(model, raw_params):
        _upload_file_param(gateway, raw_params, where)
    uris = [
        item if item.startswith("s3://") else _upload_dataset(gateway, item) for item in dataset
    ]
    body = {"training_type": training_type, "datasets": uris, "parameters": raw_params or None,
            "minion_id": minion}  # fmt: skip
    with refusals("the gateway refused the job: "):
        job_id = gateway.post("/api/jobs", body)["job_id"]
    if not wait:
        print_json({"job_id": job_id, "state": "QUEUED"}) if json_out else print(job_id)
        return
    job = _watch(gateway, job_id, timeout, quiet=json_out)
    if json_out:
        print_json(job)
    else:
        _print_outcome(job)
    if job["state"] != JobState.SUCCEEDED:
        raise typer.Exit(1)


def _upload_dataset(gateway: Gateway, item: str) -> str:
    """Upload a local file or folder; services never read the submitter's disk."""
    path = Path(item).expanduser()
    if not path.exists():
        fail(f"dataset {item} does not exist", hint="give a local file or folder, or an s3:// URI")
    files = local_files(path)
    if not files:
        fail(f"dataset {item} holds no files")
    with refusals(f"could not upload {item}: "):
        uploaded = gateway.upload(files)
    return str(uploaded["uri"]) + (uploaded["files"][0]["name"] if path.is_file() else "")


def _upload_file_param(gateway: Gateway, params: dict[str, Any], where: tuple[str, ...]) -> None:
    """Replace a local file named by a parameter with the s3:// URI of its upload."""
    *parents, leaf = where
    node = params
    for parent in parents:
        node = node[parent]
    if node[leaf].startswith("s3://"):
        return
    path = Path(node[leaf]).expanduser()
    if not path.is_file():
        fail(f"--param {'.'.join(where)}={node[leaf]}: no such file",
             hint="give a local file (it is uploaded) or an s3:// URI")  # fmt: skip
    node[leaf] = _upload_dataset(gateway, str(path))


def _watch(gateway: Gateway, job_id: str, timeout: float, *, quiet: bool) -> dict[str, Any]:
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
        while True:
            with refusals():
                job = _job_or_none(gateway, job_id)
            if job is not None:
                eta = f"eta {job['eta_seconds']:.0f}s" if job["eta_seconds"] else ""
                progress.update(task, completed=job["percent"] or 0, state=job["state"],
                                description=f"{job_id} {job['stage'] or ''}", eta=eta)  # fmt: skip
                if JobState(job["state"]).is_terminal:
                    return job
            if time.monotonic() > deadline:
                fail(
                    f"job {job_id} did not end within {timeout:.0f}s (it goes on)",
                    hint=f"`lorag jobs show {job_id}`; is the service for its type running?",
                )
            time.sleep(POLL_S)


def _job_or_none(gateway: Gateway, job_id: str) -> dict[str, Any] | None:
    """The job, or None while the tracker has not recorded its request yet."""
    from lorag_api.errors import NotFound

    try:
        job: dict[str, Any] = gateway.get(f"/api/jobs/{segment(job_id)}")
    except NotFound:
        return None
    return job


def _print_outcome(job: dict[str, Any]) -> None:
    colour = {"SUCCEEDED": "green", "FAILED": "red"}.get(job["state"], "yellow")
    console.print(f"[{colour}]{job['job_id']} {job['state']}[/] as {job['effective_type']}")
    if job["error"]:
        console.print(f"[red]{job['error']['code']}[/]: {job['error']['message']}")
    if job["result"]:
        console.print(job["result"])
