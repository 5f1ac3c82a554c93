"""`lorag adapters ls | show | promote`: the lora-service's adapter registry."""

from __future__ import annotations

from typing import Any

import typer

import lorag_lora.adapters.registry as registry
from lorag_cli.client import database, run
from lorag_cli.output import console, fail, print_json, print_table
from lorag_core.settings import Settings
from lorag_lora.domain.registry import NAME, BadReference, parse_ref

app = typer.Typer(help="List, inspect and promote LoRA adapters.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")
SHOWN = ("name", "version", "aliases", "sha256", "size_bytes", "base_model",
         "base_model_revision", "uri", "job_id", "metrics", "lora_config", "training_config",
         "created_at", "ready_at", "published_at")  # fmt: skip


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in SHOWN if k in row}


@app.command("ls")
def list_adapters(
    name: str | None = typer.Argument(None, help="Only versions of this adapter."),
    json_out: bool = JsonOpt,
) -> None:
    """List adapter versions, newest first per name."""
    settings = Settings()

    async def fetch() -> list[dict[str, Any]]:
        async with database(settings) as conn:
            return await registry.list_adapters(conn, name)

    rows = [_public(r) for r in run(fetch(), settings)]
    if json_out:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} adapter version(s)",
        ["name", "version", "aliases", "sha256", "base model", "eval loss", "created"],
        (
            [r["name"], r["version"], ",".join(r["aliases"]), r["sha256"][:12],
             r["base_model"], _fmt(r["metrics"].get("eval_loss")),
             r["created_at"].strftime("%Y-%m-%d %H:%M:%S")]
            for r in rows
        ),
    )  # fmt: skip


@app.command("show")
def show_adapter(
    ref: str = typer.Argument(..., help="NAME (latest), NAME:VERSION or NAME@ALIAS."),
    json_out: bool = JsonOpt,
) -> None:
    """Show one adapter version with its manifest figures and alias history."""
    settings = Settings()
    try:
        parsed = parse_ref(ref)
    except BadReference as exc:
        fail(str(exc))
    if parsed is None:
        fail("`base` is the bare base model, not an adapter")

    async def fetch() -> dict[str, Any]:
        async with database(settings) as conn:
            row = await registry.find(conn, parsed)
            listed = await registry.list_adapters(conn, row["name"])
            history = await registry.alias_history(conn, row["name"])
        aliases = next(r["aliases"] for r in listed if r["version"] == row["version"])
        return {**_public(row), "aliases": aliases, "history": history}

    try:
        found = run(fetch(), settings)
    except registry.AdapterNotFound as exc:
        fail(str(exc))
    if json_out:
        print_json(found)
        return
    for key in SHOWN:
        if key in found:
            console.print(f"[bold]{key}[/]: {found[key]}")
    print_table("alias history", ["alias", "version", "previous", "by", "at"], (
        [h["alias"], h["version"], h["previous_version"], h["promoted_by"],
         h["promoted_at"].strftime("%Y-%m-%d %H:%M:%S")] for h in found["history"]
    ))  # fmt: skip


@app.command("promote")
def promote(
    name: str = typer.Argument(..., help="Adapter name."),
    version: int = typer.Argument(..., min=1, help="Version to point the alias at."),
    alias: str = typer.Argument(..., help="Alias, e.g. production."),
    json_out: bool = JsonOpt,
) -> None:
    """Point ALIAS of NAME at VERSION (history is kept); serving follows on the next request."""
    if not NAME.match(alias) or alias.isdigit():
        fail(f"alias {alias!r} must be a name (letters, digits, '.', '_', '-'), not a number")
    settings = Settings()

    async def act() -> int | None:
        async with database(settings) as conn:
            return await registry.promote(conn, name, version, alias, by="cli")

    try:
        previous = run(act(), settings)
    except registry.AdapterNotFound as exc:
        fail(str(exc), hint=f"`lorag adapters ls {name}` lists its versions")
    result = {"name": name, "alias": alias, "version": version, "previous_version": previous}
    if json_out:
        print_json(result)
    else:
        console.print(f"{name}@{alias} -> version {version} (was {previous or 'unset'})")


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
