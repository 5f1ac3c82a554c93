"""An owner's minions: list them, ask one, or ask every variant side by side."""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg_pool import AsyncConnectionPool

from lorag_gateway.errors import Invalid, NotFound
from lorag_hybrid.routing import VARIANTS, Router
from lorag_hybrid.saga import store

Row = dict[str, Any]
SHOWN = ("name", "owner", "job_id", "training_type", "kb", "adapter", "scores", "best_variant",
         "updated_at")  # fmt: skip


async def list_owned(db: AsyncConnectionPool, owner: str) -> list[Row]:
    async with db.connection() as conn:
        return [{k: r.get(k) for k in SHOWN} for r in await store.list_minions(conn, owner)]


async def _owned(db: AsyncConnectionPool, owner: str, name: str) -> Row:
    async with db.connection() as conn:
        row = await store.get_minion(conn, name)
    if row is None or row["owner"] != owner:
        raise NotFound(f"no minion {name!r}")
    return row


async def _ask_one(
    db: AsyncConnectionPool, router: Router, minion: Row, question: str, variant: Any
) -> Row:
    try:
        async with db.connection() as conn:
            reply = await router.ask(conn, minion, question, variant)
    except Exception as exc:  # one variant's endpoint being down must not hide the others
        return {"variant": variant, "error": f"{type(exc).__name__}: {exc}"[:500]}
    return {"variant": reply.variant, "answer": reply.text, "sources": reply.sources}


async def ask(
    db: AsyncConnectionPool, router: Router, owner: str, name: str, question: str,
    variant: str | None = None, compare: bool = False,
) -> Row:  # fmt: skip
    """The answer of the minion's best (or the chosen) variant; with compare, of every variant."""
    if variant is not None and variant not in VARIANTS:
        raise Invalid.field(("body", "variant"), f"choose one of {', '.join(VARIANTS)}")
    minion = await _owned(db, owner, name)
    chosen = list(VARIANTS) if compare else [variant or minion["best_variant"]]
    replies = await asyncio.gather(*(_ask_one(db, router, minion, question, v) for v in chosen))
    return {"minion": name, "question": question, "best_variant": minion["best_variant"],
            "scores": minion["scores"], "replies": list(replies)}  # fmt: skip
