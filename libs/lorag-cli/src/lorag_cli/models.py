"""`lorag models build-tiny DIR`: build the small local LLaMA used when no hub can be reached."""

from __future__ import annotations

from pathlib import Path

import typer

from lorag_cli.output import console, print_json

app = typer.Typer(help="Local base models.", no_args_is_help=True)


@app.command("build-tiny")
def build_tiny(
    folder: Path = typer.Argument(..., help="Folder to write the model and tokenizer into."),
    seed: int = typer.Option(0, help="Seed of the weights; the same seed builds the same model."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Build the tiny LLaMA-architecture model (about 1 M parameters) into FOLDER."""
    from lorag_lora.tiny import build_tiny_llama  # torch loads only for this command

    built = build_tiny_llama(folder, seed=seed)
    if json_out:
        print_json({"folder": str(built)})
    else:
        console.print(f"built {built}; use it with --param base_model={built}")
