"""`lorag recommend --dataset PATH`: which training type fits, with estimated memory, time, cost."""

from __future__ import annotations

from pathlib import Path

import typer

from lorag_cli.gateway import Gateway, refusals
from lorag_cli.output import console, fail, print_json, print_table
from lorag_cli.submit import local_files


def recommend(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Local file or folder, or s3:// URI."),
    target: str = typer.Option("external", help="Where the answering model runs: external|local."),
    private: bool = typer.Option(False, "--private", help="The data must not leave this machine."),
    budget: float | None = typer.Option(None, help="Most you will spend on training, in USD."),
    base_model: str | None = typer.Option(None, help="Base model for LoRA / fine-tuning."),
    epochs: float = typer.Option(1.0, min=0.01, help="Training passes to estimate."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Rank every training type for a dataset: score, reasons, estimated memory, time and cost.

    The estimates are for the machines that would run the training (the lora-service's)."""
    if target not in ("external", "local"):
        fail(f"unknown target {target!r}", hint="use --target external or --target local")
    gateway = Gateway()
    uri = dataset
    if not dataset.startswith("s3://"):
        path = Path(dataset).expanduser()
        if not path.exists():
            fail(
                f"dataset {dataset} does not exist",
                hint="give a local file or folder, or s3:// URI",
            )
        with refusals(f"could not upload {dataset}: "):
            uri = gateway.upload(local_files(path))["uri"]
    body = {"dataset": uri, "target": target, "private": private, "budget_usd": budget,
            "base_model": base_model, "epochs": epochs}  # fmt: skip
    with refusals():
        found = gateway.post("/api/recommend", body)
    if json_out:
        print_json(found)
        return
    prof, machine = found["profile"], found["resources"]
    console.print(
        f"[bold]{dataset}[/]: {prof['records']} records, ~{prof['tokens']:,} tokens, "
        f"mostly {prof['shape']}, language {prof['language']}"
    )
    print_table(
        f"recommendations for a {target} target on {machine['cpu_cores']} cores"
        + (f" + {machine['gpu']}" if machine.get("gpu") else ""),
        ["type", "score", "memory", "time", "cost", "why"],
        ([r["training_type"], "refused" if r["refused"] else f"{r['score']:.0f}",
          f"{r['peak_memory_gb']:.2f} GB", _duration(r["seconds"]), f"${r['cost_usd']:.2f}",
          r["refused"] or "\n".join(r["reasons"])] for r in found["recommendations"]),
    )  # fmt: skip


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
