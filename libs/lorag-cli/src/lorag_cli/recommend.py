"""`lorag recommend --dataset PATH`: which training type fits, with estimated memory, time, cost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import psycopg
import typer

from lorag_cli.client import database
from lorag_cli.output import console, err_console, fail, print_json, print_table
from lorag_core.domain.training_types import TrainingType
from lorag_core.settings import Settings
from lorag_core.storage import ObjectStore, parse_s3_uri
from lorag_hybrid.recommend import history, models
from lorag_hybrid.recommend.profile import DatasetProfile, profile
from lorag_hybrid.recommend.rank import Goal, rank
from lorag_hybrid.recommend.resources import detect

MAX_PROFILE_BYTES = 512 * 2**20


def _files(dataset: str) -> Iterator[tuple[str, bytes]]:
    if dataset.startswith("s3://"):
        bucket, prefix = parse_s3_uri(dataset)
        objects = ObjectStore.from_settings(Settings().s3)
        for key in objects.list_keys(bucket, prefix):
            yield key, objects.get_bytes(bucket, key, require_digest=False)
        return
    path = Path(dataset).expanduser()
    for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
        yield file.name, file.read_bytes()


def recommend(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Local file or folder, or s3:// URI."),
    target: str = typer.Option("external", help="Where the answering model runs: external|local."),
    private: bool = typer.Option(False, "--private", help="The data must not leave this machine."),
    budget: float | None = typer.Option(None, help="Most you will spend on training, in USD."),
    base_model: str | None = typer.Option(None, help="Base model for LoRA / fine-tuning."),
    epochs: float = typer.Option(1.0, min=0.01, help="Training passes to estimate."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Rank every training type for a dataset: score, reasons, estimated memory, time and cost."""
    if target not in ("external", "local"):
        fail(f"unknown target {target!r}", hint="use --target external or --target local")
    if not dataset.startswith("s3://") and not Path(dataset).expanduser().exists():
        fail(f"dataset {dataset} does not exist", hint="give a local file or folder, or s3:// URI")
    try:
        model = models.resolve(base_model)
    except ValueError as exc:
        fail(str(exc))
    found = profile(_files(dataset))
    if found.records == 0:
        fail(f"dataset {dataset} holds no readable records", hint="JSONL, CSV, Markdown or text")
    goal_target: Literal["external", "local"] = "local" if target == "local" else "external"
    machine = detect()
    past = _history(found)
    ranked = rank(
        found,
        Goal(target=goal_target, private=private, budget_usd=budget, epochs=epochs),
        model,
        machine,
        history=past,
    )
    if json_out:
        print_json(
            {
                "profile": found.as_dict(),
                "resources": machine.as_dict(),
                "model": model.name,
                "recommendations": [r.as_dict() for r in ranked],
            }
        )
        return
    console.print(
        f"[bold]{dataset}[/]: {found.records} records, ~{found.tokens:,} tokens, "
        f"mostly {found.shape.value}, language {found.language}"
    )
    print_table(
        f"recommendations for a {target} target on {machine.cpu_cores} cores"
        + (f" + {machine.gpu_name}" if machine.gpu_name else ""),
        ["type", "score", "memory", "time", "cost", "why"],
        (
            [
                r.training_type.value,
                "refused" if r.refused else f"{r.score:.0f}",
                f"{r.estimate.peak_memory_bytes / 2**30:.2f} GB",
                _duration(r.estimate.seconds),
                f"${r.estimate.cost_usd:.2f}",
                r.refused or "\n".join(r.reasons),
            ]
            for r in ranked
        ),
    )


def _history(found: DatasetProfile) -> dict[TrainingType, str]:
    """Outcomes of similar past jobs; without a reachable database, none (and say so)."""

    async def fetch() -> dict[TrainingType, str]:
        async with database(Settings()) as conn:
            return await history.notes_for(conn, found)

    try:
        return asyncio.run(fetch())
    except (psycopg.Error, OSError) as exc:
        err_console.print(f"[dim]no past outcomes used ({type(exc).__name__}); `lorag up`?[/]")
        return {}


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
