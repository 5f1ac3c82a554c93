"""Saga and minion state in Postgres, owned by the hybrid-orchestrator."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

Row = dict[str, Any]


async def record_stage(
    conn: AsyncConnection[Any],
    parent: str,
    stage: str,
    sub_job_id: str,
    attempt: int,
    traceparent: str | None = None,
) -> None:
    """Remember which sub-job runs a stage, in which trace (a retry replaces the earlier one)."""
    await conn.execute(
        "INSERT INTO saga_stages (parent_job_id, stage, sub_job_id, attempt, traceparent)"
        " VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (parent_job_id, stage) DO UPDATE SET sub_job_id = EXCLUDED.sub_job_id,"
        " attempt = EXCLUDED.attempt, traceparent = EXCLUDED.traceparent, provider_job = NULL"
        " WHERE saga_stages.attempt < EXCLUDED.attempt",
        (parent, stage, sub_job_id, attempt, traceparent),
    )


async def record_provider_job(
    conn: AsyncConnection[Any], parent: str, stage: str, attempt: int, provider_job: str
) -> None:
    """Remember the fine-tuning provider's job of this attempt of an external stage."""
    await conn.execute(
        "UPDATE saga_stages SET provider_job = %s"
        " WHERE parent_job_id = %s AND stage = %s AND attempt = %s",
        (provider_job, parent, stage, attempt),
    )


async def stages(conn: AsyncConnection[Any], parent: str) -> dict[str, Row]:
    cur = await conn.execute("SELECT * FROM saga_stages WHERE parent_job_id = %s", (parent,))
    return {row["stage"]: row for row in await cur.fetchall()}


async def mark_compensated(conn: AsyncConnection[Any], parent: str, stage: str) -> bool:
    """True the first time: a compensation is requested once, even across restarts."""
    cur = await conn.execute(
        "UPDATE saga_stages SET compensated_at = now() WHERE parent_job_id = %s AND stage = %s"
        " AND compensated_at IS NULL",
        (parent, stage),
    )
    return cur.rowcount == 1


async def sub_jobs(conn: AsyncConnection[Any], job_ids: list[str]) -> dict[str, Row]:
    cur = await conn.execute(
        "SELECT job_id, state, percent, eta_seconds, stage, metrics, result, error, updated_at,"
        " created_at FROM jobs WHERE job_id = ANY(%s)",
        (job_ids,),
    )
    return {row["job_id"]: row for row in await cur.fetchall()}


async def save_minion(conn: AsyncConnection[Any], minion: Row) -> None:
    await conn.execute(
        """
        INSERT INTO minions (name, owner, job_id, training_type, kb, adapter, llm, scores,
                             best_variant, evaluations)
        VALUES (%(name)s, %(owner)s, %(job_id)s, %(training_type)s, %(kb)s, %(adapter)s,
                %(llm)s, %(scores)s, %(best_variant)s, %(evaluations)s)
        ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, job_id = EXCLUDED.job_id,
            training_type = EXCLUDED.training_type, kb = EXCLUDED.kb, adapter = EXCLUDED.adapter,
            llm = EXCLUDED.llm, scores = EXCLUDED.scores, best_variant = EXCLUDED.best_variant,
            evaluations = EXCLUDED.evaluations, updated_at = now()
        """,
        {
            **minion,
            "llm": Jsonb(minion["llm"]),
            "scores": Jsonb(minion["scores"]),
            "evaluations": Jsonb(minion.get("evaluations") or []),
        },
    )


async def get_minion(conn: AsyncConnection[Any], name: str) -> Row | None:
    cur = await conn.execute("SELECT * FROM minions WHERE name = %s", (name,))
    return await cur.fetchone()


async def list_minions(conn: AsyncConnection[Any], owner: str | None = None) -> list[Row]:
    cur = await conn.execute(
        "SELECT * FROM minions WHERE %(owner)s::text IS NULL OR owner = %(owner)s ORDER BY name",
        {"owner": owner},
    )
    return await cur.fetchall()
