"""The knowledge-base registry in Postgres: names, locked models, versions and their figures."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from lorag_rag.domain.manifest import FileEntry

Row = dict[str, Any]
SummaryValue = float | int | str | bool | None


class KbConflict(Exception):
    """Another ingest committed a version of the same KB first."""


async def get(conn: AsyncConnection[Any], name: str) -> Row | None:
    cur = await conn.execute("SELECT * FROM rag_knowledge_bases WHERE name = %s", (name,))
    return await cur.fetchone()


async def list_all(conn: AsyncConnection[Any], owner: str | None = None) -> list[Row]:
    cur = await conn.execute(
        "SELECT * FROM rag_knowledge_bases WHERE version > 0 AND (%s::text IS NULL OR owner = %s)"
        " ORDER BY name",
        (owner, owner),
    )
    return await cur.fetchall()


async def claim(
    conn: AsyncConnection[Any], name: str, owner: str, collection: str, model: str, dim: int
) -> Row:
    """The KB's row, created on first use with the model that locks it."""
    await conn.execute(
        "INSERT INTO rag_knowledge_bases (name, owner, collection, embedding_model, dimension)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
        (name, owner, collection, model, dim),
    )
    row = await get(conn, name)
    assert row is not None
    return row


async def committed_by(conn: AsyncConnection[Any], job_id: str) -> Row | None:
    """The version a job already committed (a rerun after a crash returns it as is)."""
    cur = await conn.execute("SELECT * FROM rag_kb_versions WHERE job_id = %s", (job_id,))
    return await cur.fetchone()


async def manifest(conn: AsyncConnection[Any], name: str) -> dict[str, FileEntry]:
    """The files of the KB's live version, by source (empty for a KB not yet committed)."""
    cur = await conn.execute(
        "SELECT source, digest, settings, chunks, pairs, tag FROM rag_kb_files WHERE name = %s",
        (name,),
    )
    return {r["source"]: FileEntry(**r) for r in await cur.fetchall()}


async def commit(
    conn: AsyncConnection[Any], name: str, base_version: int, job_id: str,
    summary: dict[str, SummaryValue], files: list[FileEntry],
) -> int:  # fmt: skip
    """Make version base_version+1 the live one, with its figures and its file manifest.

    KbConflict if another ingest moved the version first; the manifest changes with the version,
    in the same transaction, so it always describes what the live version holds.
    """
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE rag_knowledge_bases SET version = version + 1, chunk_count = %s,"
            " source_count = %s, hit_rate = %s, mrr = %s, eval_pairs = %s, eval_k = %s,"
            " job_id = %s, updated_at = now() WHERE name = %s AND version = %s RETURNING version",
            (
                summary["chunks"], summary["sources"], summary.get("hit_rate"),
                summary.get("mrr"), summary.get("eval_pairs"), summary.get("eval_k"),
                job_id, name, base_version,
            ),
        )  # fmt: skip
        row = await cur.fetchone()
        if row is None:
            raise KbConflict(name)
        version = int(row["version"])
        await conn.execute(
            "INSERT INTO rag_kb_versions (name, version, job_id, summary) VALUES (%s, %s, %s, %s)",
            (name, version, job_id, Jsonb({**summary, "version": version})),
        )
        await conn.execute("DELETE FROM rag_kb_files WHERE name = %s", (name,))
        async with conn.cursor().copy(
            "COPY rag_kb_files (name, source, digest, settings, chunks, pairs, tag) FROM STDIN"
        ) as copy:
            for f in files:
                await copy.write_row(
                    (name, f.source, f.digest, f.settings, f.chunks, f.pairs, f.tag)
                )
    return version


async def forget_if_uncommitted(conn: AsyncConnection[Any], name: str) -> None:
    """Drop a KB row that never got a version (its first ingest was cancelled or failed)."""
    await conn.execute("DELETE FROM rag_knowledge_bases WHERE name = %s AND version = 0", (name,))
