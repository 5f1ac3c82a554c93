"""An owner's adapters and knowledge bases; another owner's are not found."""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

import lorag_lora.adapters.registry as adapters
from lorag_gateway.errors import Invalid, NotFound
from lorag_lora.domain.registry import NAME
from lorag_rag import retrieval
from lorag_rag.adapters import registry as kbs
from lorag_rag.deps import RagDeps

Row = dict[str, Any]
ADAPTER_FIELDS = (
    "name",
    "version",
    "aliases",
    "sha256",
    "size_bytes",
    "base_model",
    "base_model_revision",
    "uri",
    "job_id",
    "metrics",
    "lora_config",
    "created_at",
)
KB_FIELDS = ("name", "version", "embedding_model", "chunk_count", "source_count", "hit_rate",
             "mrr", "eval_pairs", "eval_k", "owner", "job_id", "updated_at")  # fmt: skip


async def _owned_jobs(conn: AsyncConnection[Any], owner: str, job_ids: list[str]) -> set[str]:
    """Which of the jobs the owner submitted: an adapter belongs to its job's owner."""
    cur = await conn.execute(
        "SELECT job_id FROM jobs WHERE owner = %s AND job_id = ANY(%s)", (owner, job_ids)
    )
    return {r["job_id"] for r in await cur.fetchall()}


async def list_adapters(db: AsyncConnectionPool, owner: str, name: str | None = None) -> list[Row]:
    async with db.connection() as conn:
        rows = await adapters.list_adapters(conn, name)
        mine = await _owned_jobs(conn, owner, [r["job_id"] for r in rows])
    return [{k: r.get(k) for k in ADAPTER_FIELDS} for r in rows if r["job_id"] in mine]


async def ensure_adapter_name_free(db: AsyncConnectionPool, owner: str, name: str) -> None:
    """NameTaken when another owner has versions of an adapter of that name (the registry's
    rule, checked here too so the API refuses before the job is queued)."""
    async with db.connection() as conn:
        await adapters.ensure_name_free(conn, name, owner)


async def show_adapter(db: AsyncConnectionPool, owner: str, name: str) -> Row:
    """An adapter's versions with aliases, and its alias history."""
    versions = await list_adapters(db, owner, name)
    if not versions:
        raise NotFound(f"no adapter {name!r}")
    async with db.connection() as conn:
        history = await adapters.alias_history(conn, name)
    # Versions another owner added before the registry kept owners share the history, and
    # stay unseen like everything else of theirs.
    mine = {v["version"] for v in versions}
    history = [
        {**h, "previous_version": h["previous_version"] if h["previous_version"] in mine else None}
        for h in history
        if h["version"] in mine
    ]
    return {"name": name, "versions": versions, "history": history}


async def promote(db: AsyncConnectionPool, owner: str, name: str, version: int, alias: str) -> Row:
    """Point an alias of the owner's adapter at one of its versions."""
    if not NAME.match(alias) or alias.isdigit():
        raise Invalid.field(("body", "alias"), "an alias is a name (letters, digits, . _ -)")
    versions = await list_adapters(db, owner, name)
    if not any(v["version"] == version for v in versions):
        raise NotFound(f"no adapter {name}:{version}")
    async with db.connection() as conn:
        previous = await adapters.promote(conn, name, version, alias, by=f"gateway:{owner}")
    return {"name": name, "alias": alias, "version": version, "previous_version": previous}


async def list_kbs(db: AsyncConnectionPool, owner: str) -> list[Row]:
    async with db.connection() as conn:
        return [{k: r.get(k) for k in KB_FIELDS} for r in await kbs.list_all(conn, owner)]


async def query_kb(
    db: AsyncConnectionPool, rag: RagDeps, owner: str, kb: str, question: str, top_k: int
) -> Row:
    """The chunks of the owner's knowledge base closest to a question."""
    async with db.connection() as conn:
        row = await kbs.get(conn, kb)
        if row is None or row["owner"] != owner or row["version"] == 0:
            raise NotFound(f"no knowledge base {kb!r}")
        hits = await asyncio.to_thread(retrieval.search, rag, row, question, top_k)
    return {
        "kb": kb,
        "question": question,
        "hits": [
            {"rank": n, "score": round(h.score, 4), "source": h.metadata.get("source"),
             "title": h.metadata.get("title"), "id": h.id, "text": h.text}
            for n, h in enumerate(hits, 1)
        ],
    }  # fmt: skip
