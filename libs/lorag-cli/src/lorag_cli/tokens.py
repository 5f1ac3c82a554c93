"""`lorag tokens create OWNER | ls | revoke ID`: API tokens of the gateway (only hashes kept)."""

from __future__ import annotations

from typing import Any

import typer

from lorag_cli.client import database, run
from lorag_cli.output import console, fail, print_json, print_table
from lorag_core.db import tokens
from lorag_core.settings import Settings

app = typer.Typer(help="Create, list and revoke gateway API tokens.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


@app.command("create")
def create(
    owner: str = typer.Argument(..., help="Tenant the token acts for."),
    label: str | None = typer.Option(None, help="What the token is for."),
    json_out: bool = JsonOpt,
) -> None:
    """Create a token for OWNER; it is shown once, only its sha256 is kept."""
    if not tokens.OWNER.match(owner):
        fail(f"owner {owner!r} must be letters, digits, '.', '_', '-' (at most 64)")
    settings = Settings()

    async def act() -> dict[str, Any]:
        async with database(settings) as conn:
            return await tokens.create(conn, owner, label)

    row = run(act(), settings)
    if json_out:
        print_json(row)
    else:
        console.print(f"{row['token_id']} for {owner}; keep this token, it is not shown again:")
        print(row["token"])


@app.command("ls")
def list_tokens(json_out: bool = JsonOpt) -> None:
    """List tokens (never the tokens themselves)."""
    settings = Settings()

    async def fetch() -> list[dict[str, Any]]:
        async with database(settings) as conn:
            return await tokens.list_all(conn)

    rows = run(fetch(), settings)
    if json_out:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} token(s)",
        ["id", "owner", "label", "created", "revoked"],
        ([r["token_id"], r["owner"], r["label"], f"{r['created_at']:%Y-%m-%d %H:%M}",
          f"{r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else ""] for r in rows),
    )  # fmt: skip


@app.command("revoke")
def revoke(token_id: str = typer.Argument(..., help="Token id from `lorag tokens ls`.")) -> None:
    """Revoke a token; requests with it get 401 from then on."""
    settings = Settings()

    async def act() -> bool:
        async with database(settings) as conn:
            return await tokens.revoke(conn, token_id)

    if not run(act(), settings):
        fail(f"no live token {token_id!r}", hint="`lorag tokens ls` lists them")
    console.print(f"revoked {token_id}")
