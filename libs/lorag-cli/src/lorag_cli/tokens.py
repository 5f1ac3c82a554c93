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
    expires_in: str | None = typer.Option(
        None, "--expires-in", help="Lifetime, e.g. 12h, 30d, 2w; default: until revoked."
    ),
    read_only: bool = typer.Option(
        False, "--read-only", help="Only reads: listing, showing, querying, asking (403 else)."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Create a token for OWNER; it is shown once, only its sha256 is kept."""
    if not tokens.OWNER.match(owner):
        fail(f"owner {owner!r} must be letters, digits, '.', '_', '-' (at most 64)")
    try:
        lifetime = tokens.parse_duration(expires_in) if expires_in is not None else None
    except ValueError as exc:
        fail(str(exc), hint="--expires-in 30d")
    settings = Settings()

    async def act() -> dict[str, Any]:
        async with database(settings) as conn:
            return await tokens.create(conn, owner, label, expires_in=lifetime, read_only=read_only)

    row = run(act(), settings)
    if json_out:
        print_json(row)
    else:
        scope = "read-only" if read_only else "read-write"
        until = f", expires {row['expires_at']:%Y-%m-%d %H:%M %Z}" if row["expires_at"] else ""
        console.print(
            f"{row['token_id']} for {owner} ({scope}{until}); keep this token, "
            "it is not shown again:"
        )
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
        ["id", "owner", "label", "scope", "created", "expires", "last used", "revoked"],
        ([r["token_id"], r["owner"], r["label"], "read-only" if r["read_only"] else "read-write",
          _when(r["created_at"]), _when(r["expires_at"]), _when(r["last_used_at"]),
          _when(r["revoked_at"])] for r in rows),
    )  # fmt: skip


def _when(moment: Any) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else ""


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
