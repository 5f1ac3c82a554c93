"""An owner's adapters: list, show, promote, name check. Another owner's are not found.

The registry's `owner` column says whose a version is (its job's owner, kept since 0002), so
ownership is checked here, by the service that keeps the registry.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from lorag_api.lora import Adapter, AdapterVersion, AliasChange, NameCheck, Promoted
from lorag_core.service.api import NotFound
from lorag_lora.adapters import registry

Row = dict[str, Any]
LIST_HINT = "`lorag adapters ls` lists your adapters"


def adapter_not_found(name: str) -> NotFound:
    """The same answer for a missing adapter and another owner's: neither is the caller's."""
    return NotFound(f"no adapter {name}", code="ADAPTER_NOT_FOUND", hint=LIST_HINT)


async def list_adapters(
    db: AsyncConnectionPool, owner: str, name: str | None = None
) -> list[AdapterVersion]:
    """The owner's ready adapter versions, by name, newest version first."""
    async with db.connection() as conn:
        rows = await registry.list_adapters(conn, name, owner=owner)
    return [AdapterVersion.model_validate(r) for r in rows]


async def show_adapter(db: AsyncConnectionPool, owner: str, name: str) -> Adapter:
    """An adapter's versions with their aliases, and the alias history of those versions."""
    versions = await list_adapters(db, owner, name)
    if not versions:
        raise adapter_not_found(repr(name))
    async with db.connection() as conn:
        history = await registry.alias_history(conn, name)
    # Versions another owner added before the registry kept owners share the name's history;
    # they stay unseen like everything else of theirs.
    mine = {v.version for v in versions}
    changes = [
        AliasChange.model_validate(
            {
                **h,
                "previous_version": h["previous_version"]
                if h["previous_version"] in mine
                else None,
            }
        )
        for h in history
        if h["version"] in mine
    ]
    return Adapter(name=name, versions=versions, history=changes)


async def promote(
    db: AsyncConnectionPool, owner: str, name: str, version: int, alias: str
) -> Promoted:
    """Point an alias of the owner's adapter at one of the owner's versions of it."""
    async with db.connection() as conn:
        owned = await registry.list_adapters(conn, name, owner=owner)
        if not any(r["version"] == version for r in owned):
            raise adapter_not_found(f"{name}:{version}")
        previous = await registry.promote(conn, name, version, alias, by=owner)
    return Promoted(name=name, alias=alias, version=version, previous_version=previous)


async def check_name(db: AsyncConnectionPool, owner: str, name: str) -> NameCheck:
    """Whether the owner may add versions to `name` (a name is its first owner's)."""
    async with db.connection() as conn:
        try:
            await registry.ensure_name_free(conn, name, owner)
        except registry.NameTaken as taken:
            return NameCheck(name=name, available=False, message=str(taken))
    return NameCheck(name=name, available=True)
