"""`lorag db upgrade | status`: the schema of every installed component."""

from __future__ import annotations

import typer

from lorag_cli.output import console, fail, print_json, print_table
from lorag_core.db import migrations
from lorag_core.settings import Settings

app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


@app.command("upgrade")
def upgrade(json_out: bool = JsonOpt) -> None:
    """Apply every pending migration (safe to run from several places at once)."""
    try:
        applied = migrations.upgrade(Settings().postgres_dsn)
    except migrations.MigrationError as exc:
        fail(str(exc))
    if json_out:
        print_json(
            {
                "applied": [
                    {"component": m.component, "version": m.version, "name": m.name}
                    for m in applied
                ]
            }
        )
    elif applied:
        for m in applied:
            console.print(f"applied {m.component} {m.version:04d}_{m.name}")
    else:
        console.print("the schema is up to date")


@app.command("status")
def status(json_out: bool = JsonOpt) -> None:
    """List applied and pending migrations."""
    try:
        report = migrations.status(Settings().postgres_dsn)
    except migrations.MigrationError as exc:
        fail(str(exc))
    if json_out:
        print_json({"applied": report.applied, "pending": report.pending})
        return
    print_table(
        "migrations",
        ["component", "version", "name", "applied"],
        [
            [m["component"], m["version"], m["name"], m.get("applied_at", "pending")]
            for m in report.applied + report.pending
        ],
    )
