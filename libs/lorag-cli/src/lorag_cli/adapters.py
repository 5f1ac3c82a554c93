"""`lorag adapters ls | show | promote`: your LoRA adapters, through the gateway."""

from __future__ import annotations

import re
from typing import Any

import typer

from lorag_cli.gateway import Gateway, refusals, segment
from lorag_cli.output import console, fail, print_json, print_table

app = typer.Typer(help="List, inspect and promote LoRA adapters.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")
REF = re.compile(
    r"^(?P<name>[A-Za-z0-9._-]+?)(?::(?P<version>\d+)|@(?P<alias>[A-Za-z0-9._-]+))?$"
)  # NAME, NAME:VERSION or NAME@ALIAS
SHOWN = (
    "name", "version", "aliases", "owner", "sha256", "size_bytes", "base_model",
    "base_model_revision", "uri", "job_id", "metrics", "lora_config", "created_at",
)  # fmt: skip


@app.command("ls")
def list_adapters(
    name: str | None = typer.Argument(None, help="Only versions of this adapter."),
    json_out: bool = JsonOpt,
) -> None:
    """List your adapter versions, newest first per name."""
    with refusals("cannot list adapters: "):
        rows = Gateway().get("/api/adapters")
    rows = [r for r in rows if name is None or r["name"] == name]
    if json_out:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} adapter version(s)",
        ["name", "version", "aliases", "sha256", "base model", "eval loss", "created"],
        ([r["name"], r["version"], ",".join(r["aliases"]), (r["sha256"] or "")[:12],
          r["base_model"], _fmt((r["metrics"] or {}).get("eval_loss")),
          (r["created_at"] or "")[:19].replace("T", " ")] for r in rows),
    )  # fmt: skip


@app.command("show")
def show_adapter(
    ref: str = typer.Argument(..., help="NAME (latest), NAME:VERSION or NAME@ALIAS."),
    json_out: bool = JsonOpt,
) -> None:
    """Show one adapter version with its manifest figures and alias history."""
    match = REF.match(ref)
    if match is None or ref == "base":
        fail(f"{ref!r} is not an adapter reference", hint="use NAME, NAME:VERSION or NAME@ALIAS")
    name = match["name"]
    with refusals():
        adapter = Gateway().get(f"/api/adapters/{segment(name)}")
    found = _pick(adapter["versions"], match["version"], match["alias"] or "latest")
    if found is None:
        fail(f"adapter {ref!r} has no such version", hint=f"`lorag adapters ls {name}` lists them")
    shown = {**{k: found.get(k) for k in SHOWN}, "history": adapter["history"]}
    if json_out:
        print_json(shown)
        return
    for key in SHOWN:
        console.print(f"[bold]{key}[/]: {shown[key]}")
    print_table("alias history", ["alias", "version", "previous", "by", "at"], (
        [h["alias"], h["version"], h["previous_version"], h["promoted_by"],
         (h["promoted_at"] or "")[:19].replace("T", " ")] for h in shown["history"]
    ))  # fmt: skip


@app.command("promote")
def promote(
    name: str = typer.Argument(..., help="Adapter name."),
    version: int = typer.Argument(..., min=1, help="Version to point the alias at."),
    alias: str = typer.Argument(..., help="Alias, e.g. production."),
    json_out: bool = JsonOpt,
) -> None:
    """Point ALIAS of NAME at VERSION (history is kept); serving follows on the next request."""
    if alias.isdigit():
        fail(f"alias {alias!r} must be a name (letters, digits, '.', '_', '-'), not a number")
    with refusals():
        result = Gateway().post(
            f"/api/adapters/{segment(name)}/promote", {"version": version, "alias": alias}
        )
    if json_out:
        print_json(result)
    else:
        console.print(
            f"{name}@{alias} -> version {version} (was {result['previous_version'] or 'unset'})"
        )


def _pick(versions: list[dict[str, Any]], version: str | None, alias: str) -> dict[str, Any] | None:
    for row in versions:
        if (version is not None and row["version"] == int(version)) or (
            version is None and alias in row["aliases"]
        ):
            return row
    return None


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
