"""API tokens (the gateway's, kept by the kernel so admin tools create them without the gateway):
created for an owner, stored only as their sha256, looked up, revoked."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from psycopg import AsyncConnection

Row = dict[str, Any]
PREFIX = "lrg_"
OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # as job.requested's owner


def digest(token: str) -> str:
    """The sha256 the table keeps instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create(conn: AsyncConnection[Any], owner: str, label: str | None = None) -> Row:
    """A new token for an owner; the token itself is in the result once and never stored."""
    if not OWNER.match(owner):
        raise ValueError(f"owner {owner!r} must be letters, digits, '.', '_', '-' (at most 64)")
    token = PREFIX + secrets.token_urlsafe(32)
    token_id = "tok-" + secrets.token_hex(6)
    cur = await conn.execute(
        "INSERT INTO gateway_tokens (token_id, owner, token_sha256, label) VALUES (%s, %s, %s, %s)"
        " RETURNING token_id, owner, label, created_at",
        (token_id, owner, digest(token), label),
    )
    row = await cur.fetchone()
    assert row is not None
    return {**row, "token": token}


async def list_all(conn: AsyncConnection[Any]) -> list[Row]:
    cur = await conn.execute(
        "SELECT token_id, owner, label, created_at, revoked_at, last_used_at FROM gateway_tokens"
        " ORDER BY created_at"
    )
    return await cur.fetchall()


async def revoke(conn: AsyncConnection[Any], token_id: str) -> bool:
    """Revoke a token; False when there is no such live token."""
    cur = await conn.execute(
        "UPDATE gateway_tokens SET revoked_at = now() WHERE token_id = %s AND revoked_at IS NULL",
        (token_id,),
    )
    return cur.rowcount == 1


async def owner_of(conn: AsyncConnection[Any], token: str) -> str | None:
    """The owner a live token belongs to, or None."""
    cur = await conn.execute(
        "SELECT owner FROM gateway_tokens WHERE token_sha256 = %s AND revoked_at IS NULL",
        (digest(token),),
    )
    row = await cur.fetchone()
    return None if row is None else str(row["owner"])
