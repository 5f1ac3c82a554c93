"""The adapter registry in Postgres: versions reserved once per job, aliases, promotion history.

Every function takes an open connection (dict rows) so the worker, the API and the CLI share it.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from lorag_lora.domain.registry import LATEST, AdapterRef

Row = dict[str, Any]
Conn = AsyncConnection[Any]
COLUMNS = (
    "name, version, job_id, status, base_model, base_model_revision, uri, sha256, size_bytes,"
    " lora_config, training_config, metrics, created_at, ready_at, published_at, owner, kind"
)


class AdapterNotFound(LookupError):
    """No ready adapter answers to a reference."""


class NameTaken(Exception):
    """The adapter name has versions made by another owner."""

    def __init__(self, name: str) -> None:
        super().__init__(f"adapter {name!r} belongs to another owner; choose another name")


async def ensure_name_free(conn: Conn, name: str, owner: str) -> None:
    """NameTaken when another owner has versions of `name`: a name is its first owner's."""
    cur = await conn.execute(
        "SELECT 1 FROM lora_adapters WHERE name = %s AND owner IS DISTINCT FROM %s LIMIT 1",
        (name, owner),
    )
    if await cur.fetchone() is not None:
        raise NameTaken(name)


async def reserve_version(conn: Conn, name: str, job_id: str, owner: str) -> int:
    """The job's version of `name`: its own if it already has one (a retry), else the next free.

    NameTaken when another owner has versions of that name."""
    async with conn.transaction():
        # One allocator per name at a time; the unique (name, version) key is the last guard.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('lora:' || %s))", (name,))
        row = await (
            await conn.execute(
                "SELECT name, version FROM lora_adapters WHERE job_id = %s", (job_id,)
            )
        ).fetchone()
        if row is not None:
            if row["name"] != name:
                raise ValueError(f"job {job_id} already holds adapter {row['name']}")
            return int(row["version"])
        await ensure_name_free(conn, name, owner)
        cur = await conn.execute(
            "INSERT INTO lora_adapters (name, version, job_id, owner) SELECT %(name)s,"
            " COALESCE(MAX(version), 0) + 1, %(job)s, %(owner)s FROM lora_adapters"
            " WHERE name = %(name)s RETURNING version",
            {"name": name, "job": job_id, "owner": owner},
        )
        return int((await cur.fetchone())["version"])  # type: ignore[index]


async def mark_ready(conn: Conn, name: str, version: int, **fields: Any) -> None:
    """Record where the stored files are and what made them; point `latest` at this version."""
    json_cols = {"lora_config", "training_config", "metrics"}
    values = {k: Jsonb(v) if k in json_cols else v for k, v in fields.items()}
    sets = ", ".join(f"{k} = %({k})s" for k in values)
    async with conn.transaction():
        await conn.execute(
            f"UPDATE lora_adapters SET {sets}, status = 'ready',"
            " ready_at = COALESCE(ready_at, now())"
            " WHERE name = %(name)s AND version = %(version)s",
            {**values, "name": name, "version": version},
        )
        await _set_alias(conn, name, LATEST, version, "registry")


async def mark_published(conn: Conn, name: str, version: int) -> bool:
    """Record that adapter.created went out; False if it already had."""
    cur = await conn.execute(
        "UPDATE lora_adapters SET published_at = now()"
        " WHERE name = %s AND version = %s AND published_at IS NULL",
        (name, version),
    )
    return cur.rowcount == 1


async def get(conn: Conn, name: str, version: int) -> Row | None:
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM lora_adapters WHERE name = %s AND version = %s", (name, version)
    )
    return await cur.fetchone()


async def find(conn: Conn, ref: AdapterRef) -> Row:
    """The ready adapter a reference names; AdapterNotFound says what exists."""
    if ref.version is not None:
        row = await get(conn, ref.name, ref.version)
    else:
        cur = await conn.execute(
            f"SELECT {', '.join('a.' + c.strip() for c in COLUMNS.split(','))}"
            " FROM lora_adapter_aliases l JOIN lora_adapters a USING (name, version)"
            " WHERE l.name = %s AND l.alias = %s",
            (ref.name, ref.alias),
        )
        row = await cur.fetchone()
    if row is None or row["status"] != "ready":
        raise AdapterNotFound(f"no adapter {ref}; `lorag adapters ls` lists the adapters")
    return row


async def list_adapters(
    conn: Conn, name: str | None = None, *, owner: str | None = None,
    kinds: tuple[str, ...] = ("adapter",),
) -> list[Row]:  # fmt: skip
    """Ready versions of `kinds` (adapter, model) with their aliases, newest first; only
    `owner`'s when given."""
    cur = await conn.execute(
        f"SELECT {COLUMNS}, COALESCE((SELECT array_agg(alias ORDER BY alias)"
        " FROM lora_adapter_aliases l WHERE l.name = a.name AND l.version = a.version), '{}')"
        " AS aliases FROM lora_adapters a WHERE status = 'ready'"
        " AND (%(name)s::text IS NULL OR name = %(name)s)"
        " AND (%(owner)s::text IS NULL OR owner = %(owner)s) AND kind = ANY(%(kinds)s)"
        " ORDER BY name, version DESC",
        {"name": name, "owner": owner, "kinds": list(kinds)},
    )
    return await cur.fetchall()


async def promote(conn: Conn, name: str, version: int, alias: str, by: str = "cli") -> int | None:
    """Point `alias` at a ready version, keeping the history; returns the previous version."""
    async with conn.transaction():
        row = await get(conn, name, version)
        if row is None or row["status"] != "ready":
            raise AdapterNotFound(f"no adapter {name}:{version}")
        return await _set_alias(conn, name, alias, version, by)


async def _set_alias(conn: Conn, name: str, alias: str, version: int, by: str) -> int | None:
    cur = await conn.execute(
        "SELECT version FROM lora_adapter_aliases WHERE name = %s AND alias = %s FOR UPDATE",
        (name, alias),
    )
    previous = await cur.fetchone()
    if previous is not None and previous["version"] == version:
        return version  # already there: a retry changes nothing
    await conn.execute(
        "INSERT INTO lora_adapter_aliases (name, alias, version) VALUES (%s, %s, %s)"
        " ON CONFLICT (name, alias) DO UPDATE SET version = EXCLUDED.version, updated_at = now()",
        (name, alias, version),
    )
    await conn.execute(
        "INSERT INTO lora_alias_history (name, alias, version, previous_version, promoted_by)"
        " VALUES (%s, %s, %s, %s, %s)",
        (name, alias, version, previous and previous["version"], by),
    )
    return previous and previous["version"]


async def alias_history(conn: Conn, name: str) -> list[Row]:
    cur = await conn.execute(
        "SELECT alias, version, previous_version, promoted_by, promoted_at FROM lora_alias_history"
        " WHERE name = %s ORDER BY id",
        (name,),
    )
    return await cur.fetchall()


async def by_job(conn: Conn, job_id: str) -> Row | None:
    """The adapter version a job holds, if any."""
    cur = await conn.execute(f"SELECT {COLUMNS} FROM lora_adapters WHERE job_id = %s", (job_id,))
    return await cur.fetchone()


async def withdraw(conn: Conn, job_id: str) -> Row | None:
    """Take a job's adapter version out of service; the row stays so its number is never reused."""
    row = await by_job(conn, job_id)
    if row is None or row["status"] == "withdrawn":
        return None
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM lora_adapter_aliases WHERE name = %s AND version = %s",
            (row["name"], row["version"]),
        )
        await conn.execute(
            "UPDATE lora_adapters SET status = 'withdrawn' WHERE job_id = %s", (job_id,)
        )
    return row
