"""The fine-tuning API's files and jobs in Postgres; a job's progress is the job tracker's."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

Row = dict[str, Any]
JOB_COLUMNS = (
    "f.*, j.state, j.metrics, j.result, j.error, j.updated_at AS job_updated_at"
    " FROM ft_jobs f LEFT JOIN jobs j ON j.job_id = f.job_id"
)


async def add_file(conn: AsyncConnection[Any], row: Row) -> Row:
    cur = await conn.execute(
        "INSERT INTO ft_files (file_id, owner, filename, purpose, bytes, examples, uri)"
        " VALUES (%(file_id)s, %(owner)s, %(filename)s, %(purpose)s, %(bytes)s, %(examples)s,"
        " %(uri)s) RETURNING *",
        row,
    )
    found = await cur.fetchone()
    assert found is not None
    return found


async def get_file(conn: AsyncConnection[Any], owner: str, file_id: str) -> Row | None:
    """The owner's live file; another owner's is None, exactly like a missing one."""
    cur = await conn.execute(
        "SELECT * FROM ft_files WHERE file_id = %s AND owner = %s AND deleted_at IS NULL",
        (file_id, owner),
    )
    return await cur.fetchone()


async def list_files(conn: AsyncConnection[Any], owner: str) -> list[Row]:
    cur = await conn.execute(
        "SELECT * FROM ft_files WHERE owner = %s AND deleted_at IS NULL ORDER BY created_at DESC",
        (owner,),
    )
    return await cur.fetchall()


async def delete_file(conn: AsyncConnection[Any], owner: str, file_id: str) -> bool:
    cur = await conn.execute(
        "UPDATE ft_files SET deleted_at = now() WHERE file_id = %s AND owner = %s"
        " AND deleted_at IS NULL",
        (file_id, owner),
    )
    return cur.rowcount == 1


async def add_job(conn: AsyncConnection[Any], row: Row) -> None:
    await conn.execute(
        "INSERT INTO ft_jobs (ftjob_id, owner, job_id, model, training_file, validation_file,"
        " suffix, seed, hyperparameters, adapter) VALUES (%(ftjob_id)s, %(owner)s, %(job_id)s,"
        " %(model)s, %(training_file)s, %(validation_file)s, %(suffix)s, %(seed)s,"
        " %(hyperparameters)s, %(adapter)s)",
        {**row, "hyperparameters": Jsonb(row["hyperparameters"])},
    )


async def get_job(conn: AsyncConnection[Any], owner: str, ftjob_id: str) -> Row | None:
    """The owner's job with its tracker state; another owner's is None, like a missing one."""
    cur = await conn.execute(
        f"SELECT {JOB_COLUMNS} WHERE f.ftjob_id = %s AND f.owner = %s", (ftjob_id, owner)
    )
    return await cur.fetchone()


async def list_jobs(
    conn: AsyncConnection[Any], owner: str, after: str | None, limit: int
) -> list[Row]:
    """Newest first; `after` is the last id of the previous page. One more than `limit` is read,
    to tell whether there is a next page."""
    cur = await conn.execute(
        f"SELECT {JOB_COLUMNS} WHERE f.owner = %(owner)s AND (%(after)s::text IS NULL OR"
        " (f.created_at, f.ftjob_id) < (SELECT created_at, ftjob_id FROM ft_jobs"
        "  WHERE ftjob_id = %(after)s AND owner = %(owner)s))"
        " ORDER BY f.created_at DESC, f.ftjob_id DESC LIMIT %(limit)s",
        {"owner": owner, "after": after, "limit": limit + 1},
    )
    return await cur.fetchall()


async def progress(conn: AsyncConnection[Any], job_id: str) -> list[Row]:
    """The job's recorded progress events, oldest first."""
    cur = await conn.execute(
        "SELECT seq, state, stage, percent, metrics, message, error, occurred_at"
        " FROM job_progress WHERE job_id = %s ORDER BY seq",
        (job_id,),
    )
    return await cur.fetchall()
