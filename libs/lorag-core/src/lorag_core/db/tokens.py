"""API tokens (the gateway's, kept by the kernel so admin tools create them without the gateway):
created for an owner, stored only as their sha256, looked up, revoked; each may expire and may
be read-only."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

Row = dict[str, Any]
PREFIX = "lrg_"
OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # as job.requested's owner
DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
COLUMNS = "token_id, owner, label, created_at, revoked_at, last_used_at, expires_at, read_only"


@dataclass(frozen=True)
class Grant:
    """What a live token allows: whose things, whether only reading, and until when."""

    token_id: str
    owner: str
    read_only: bool
    expires_at: datetime | None


class Expired(LookupError):
    """The token exists but expired; the message says when."""


def digest(token: str) -> str:
    """The sha256 the table keeps instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_duration(text: str) -> timedelta:
    """'30d' -> 30 days ('s', 'm', 'h', 'd', 'w'); ValueError with the accepted form otherwise."""
    match = DURATION.match(text.strip())
    if match is None or int(match[1]) == 0:
        raise ValueError(f"duration {text!r} must be a number and a unit: 90m, 12h, 30d, 2w")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


async def create(
    conn: AsyncConnection[Any],
    owner: str,
    label: str | None = None,
    *,
    expires_in: timedelta | None = None,
    read_only: bool = False,
) -> Row:
    """A new token for an owner; the token itself is in the result once and never stored."""
    if not OWNER.match(owner):
        raise ValueError(f"owner {owner!r} must be letters, digits, '.', '_', '-' (at most 64)")
    if expires_in is not None and expires_in <= timedelta(0):
        raise ValueError("a token's lifetime must be positive")
    token = PREFIX + secrets.token_urlsafe(32)
    token_id = "tok-" + secrets.token_hex(6)
    cur = await conn.execute(
        "INSERT INTO gateway_tokens (token_id, owner, token_sha256, label, expires_at, read_only)"
        " VALUES (%s, %s, %s, %s, now() + %s, %s) RETURNING " + COLUMNS,
        (token_id, owner, digest(token), label, expires_in, read_only),
    )
    row = await cur.fetchone()
    assert row is not None
    return {**row, "token": token}


async def list_all(conn: AsyncConnection[Any]) -> list[Row]:
    cur = await conn.execute(f"SELECT {COLUMNS} FROM gateway_tokens ORDER BY created_at")
    return await cur.fetchall()


async def revoke(conn: AsyncConnection[Any], token_id: str) -> bool:
    """Revoke a token; False when there is no such live token."""
    cur = await conn.execute(
        "UPDATE gateway_tokens SET revoked_at = now() WHERE token_id = %s AND revoked_at IS NULL",
        (token_id,),
    )
    return cur.rowcount == 1


async def use(conn: AsyncConnection[Any], token: str) -> Grant | None:
    """The grant of a live token, recording that it was used now; None for an unknown or revoked
    one, Expired for one past its expiry. Callers cache the grant, so a busy token is written
    once per cache period, not once per request."""
    cur = await conn.execute(
        "UPDATE gateway_tokens SET last_used_at = now() WHERE token_sha256 = %s"
        " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
        " RETURNING token_id, owner, read_only, expires_at",
        (digest(token),),
    )
    row = await cur.fetchone()
    if row is not None:
        return Grant(row["token_id"], row["owner"], row["read_only"], row["expires_at"])
    cur = await conn.execute(
        "SELECT expires_at FROM gateway_tokens WHERE token_sha256 = %s AND revoked_at IS NULL",
        (digest(token),),
    )
    expired = await cur.fetchone()
    if expired is not None:
        raise Expired(f"token expired at {expired['expires_at']:%Y-%m-%d %H:%M:%S %Z}")
    return None


async def owner_of(conn: AsyncConnection[Any], token: str) -> str | None:
    """The owner a live (unexpired) token belongs to, or None; records the use."""
    try:
        grant = await use(conn, token)
    except Expired:
        return None
    return None if grant is None else grant.owner
