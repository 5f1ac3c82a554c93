"""The legacy tables and the jobs table, as the conversion reads and writes them (psycopg 3).

Every method runs inside the caller's transaction: one batch's jobs rows and conversion records
commit together or not at all, which is what makes a killed run resumable. Audit copies are not
written here: the first change of a converted legacy row copies it (0002_lazy_audit.sql).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row

from lorag_migration.adapters.fast_path import (
    FAST,
    JOB_SELECT,
    KEYS,
    PARAMS,
    PARAMS_OK,
    ROW_KEYS,
    ROW_OK,
    STATE,
)
from lorag_migration.domain.legacy import (
    JOB_ID_PREFIX,
    Converted,
    LegacyJob,
    Unconvertible,
    id_taken,
)

LEGACY_COLUMNS = "id, minion_id, type, status, config, error_message, created_at, updated_at"
CONVERSION_LOCK_KEY = 0x6C6567616379  # "legacy": one conversion or rollback at a time
LOCK_WAIT_S = 15
NOT_CONVERTED = """
FROM legacy_training_jobs l {keys} WHERE {after} NOT EXISTS (
    SELECT 1 FROM legacy_conversions c WHERE c.legacy_id = l.id AND c.outcome = 'converted')
"""
JOB_COLUMNS = (
    "job_id, requested_type, effective_type, owner, minion_id, request, state, message, error,"
    " requested_at, created_at, finished_at"
)
# Batches arrive by COPY into per-connection scratch tables, then move over in one statement each.
SCRATCH = """
CREATE TEMP TABLE IF NOT EXISTS incoming_legacy_jobs
    (LIKE jobs INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS incoming_conversions
    (LIKE legacy_conversions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""
MOVE_JOBS = f"""
INSERT INTO jobs ({JOB_COLUMNS}) SELECT {JOB_COLUMNS} FROM incoming_legacy_jobs
ON CONFLICT (job_id) DO NOTHING RETURNING job_id
"""
# A row still unconvertible for the same reason keeps its record untouched: a rerun changes nothing.
MOVE_CONVERSIONS = """
INSERT INTO legacy_conversions (legacy_id, job_id, run_id, outcome, reason)
SELECT legacy_id, job_id, run_id, outcome, reason FROM incoming_conversions
ON CONFLICT (legacy_id) DO UPDATE SET job_id = EXCLUDED.job_id, run_id = EXCLUDED.run_id,
    outcome = EXCLUDED.outcome, reason = EXCLUDED.reason, recorded_at = now()
WHERE (legacy_conversions.outcome, legacy_conversions.reason)
    IS DISTINCT FROM (EXCLUDED.outcome, EXCLUDED.reason)
"""

# One statement converts a batch's plainly valid rows (fast_path.FAST) in the server: jobs rows
# and conversion records, returning the counts for the report, the rows whose job id
# another job holds, and the last id of the batch. Doubtful rows are left for Python.
# `had_record`: an earlier run recorded the row as unconvertible; its record is updated, not added.
# The rows are taken by the anti join in id order (index scans, stopping at the batch's end) and
# only then looked up for a record: a left join first made the planner sort the whole table.
# `kinds` is joined on the configs' hash before the configs themselves: the planner, guessing the
# CTEs' sizes, may choose a nested loop, and comparing every row's jsonb with every kind's cost
# about a fifth of a 5,000-row batch.
BATCH = f"""
WITH batch AS MATERIALIZED (
    SELECT l.*, {ROW_OK} AS row_ok, l.config - {ROW_KEYS} AS params_config,
           jsonb_hash(l.config - {ROW_KEYS}) AS params_hash,
           EXISTS (SELECT 1 FROM legacy_conversions c WHERE c.legacy_id = l.id) AS had_record
    FROM (SELECT l.* {NOT_CONVERTED.format(after="__AFTER__", keys="")}
          ORDER BY l.id LIMIT %(n)s) l),
kinds AS MATERIALIZED (
    SELECT l.type, l.params_hash, l.config AS params_config, {PARAMS_OK} AS ok,
           CASE WHEN {PARAMS_OK} THEN {PARAMS} END AS params
    FROM (SELECT DISTINCT type, params_hash, params_config AS config FROM batch WHERE row_ok) l
    {KEYS}),
plain AS MATERIALIZED (
    SELECT l.*, p.params FROM batch l
    JOIN kinds p ON p.params_hash = l.params_hash AND p.type = l.type
                    AND p.params_config = l.params_config AND p.ok
    WHERE l.row_ok),
mapped AS (SELECT {JOB_SELECT} FROM plain l CROSS JOIN LATERAL (SELECT l.params) p),
keys AS (SELECT '{JOB_ID_PREFIX}' || l.id AS job_id, l.id AS legacy_id, l.type AS legacy_type,
                l.status AS legacy_status, {STATE} AS state, l.had_record FROM plain l),
__WRITE__
SELECT (SELECT count(*) FROM batch), (SELECT max(id) FROM batch),
       (SELECT count(*) FROM batch) - (SELECT count(*) FROM plain),
       (SELECT jsonb_agg(jsonb_build_array(legacy_type, legacy_status, state, n)) FROM (
            SELECT legacy_type, legacy_status, state, count(*) AS n FROM keys m
            WHERE NOT m.job_id IN (SELECT job_id FROM clashed)
            GROUP BY 1, 2, 3) g),
       (SELECT jsonb_agg(jsonb_build_array(legacy_id, legacy_type, legacy_status, job_id)
                         ORDER BY legacy_id)
        FROM keys WHERE job_id IN (SELECT job_id FROM clashed))
"""
# `mapped` (the jobs rows, about 1 kB each) is read once, by the jobs insert, so it is computed
# as it is inserted; everything else reads `keys`. Stored as a CTE read several times, mapped
# was written to and read back from a tuplestore, spilling to disk past work_mem.
# Joins against the CTEs are avoided: their row estimates are guesses, and a nested loop over two
# of them costs a batch squared. The legacy id is read back from the job id instead.
WRITE = f"""
created AS (INSERT INTO jobs ({JOB_COLUMNS}) SELECT {JOB_COLUMNS} FROM mapped
            ON CONFLICT (job_id) DO NOTHING
            RETURNING job_id, substr(job_id, {len(JOB_ID_PREFIX) + 1}) AS legacy_id),
clashed AS (SELECT job_id FROM keys EXCEPT ALL SELECT job_id FROM created),
recorded AS (INSERT INTO legacy_conversions (legacy_id, job_id, run_id, outcome, reason)
            SELECT legacy_id, job_id, %(run)s::uuid, 'converted', NULL FROM created
            UNION ALL
            SELECT legacy_id, NULL, %(run)s::uuid, 'unconvertible',
                   'job id ' || job_id || ' already belongs to another job'
            FROM keys WHERE job_id NOT IN (SELECT job_id FROM created)
            {MOVE_CONVERSIONS.split("incoming_conversions", 1)[1]})
"""
# The usual case, without ON CONFLICT (whose speculative insertion costs about as much again per
# row): plain inserts, which fail the batch with a unique violation if another job holds one of its
# job ids; the batch is then redone with WRITE, which records that row as a clash. Records are
# only written here by conversions and rollbacks, which the advisory lock keeps one at a time.
FAST_WRITE = f"""
created AS (INSERT INTO jobs ({JOB_COLUMNS}) SELECT {JOB_COLUMNS} FROM mapped),
clashed AS (SELECT NULL::text AS job_id WHERE false),
recorded AS (INSERT INTO legacy_conversions (legacy_id, job_id, run_id, outcome, reason)
             SELECT legacy_id, job_id, %(run)s::uuid, 'converted', NULL FROM keys
             WHERE NOT had_record),
rerecorded AS (UPDATE legacy_conversions c SET job_id = m.job_id, run_id = %(run)s::uuid,
                   outcome = 'converted', reason = NULL, recorded_at = now()
               FROM keys m WHERE m.had_record AND c.legacy_id = m.legacy_id)
"""
# A dry run writes nothing: a row whose job id a job holds is one the real run would refuse.
DRY = """clashed AS (
    SELECT job_id FROM keys m WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.job_id = m.job_id))"""

RESTORED = ", ".join(f"{c} = EXCLUDED.{c}" for c in LEGACY_COLUMNS.split(", ")[1:])
CONVERTED_JOBS = "SELECT job_id FROM legacy_conversions WHERE outcome = 'converted'"
# Order matters: the conversion records name the jobs to delete, so they go last but one.
ROLLBACK = (
    ("progress_deleted", f"DELETE FROM job_progress WHERE job_id IN ({CONVERTED_JOBS})"),
    ("jobs_deleted", f"DELETE FROM jobs WHERE job_id IN ({CONVERTED_JOBS})"),
    # Rows deleted or edited since their conversion come back as audited; equal rows stay untouched.
    (
        "legacy_rows_restored",
        f"""
INSERT INTO legacy_training_jobs ({LEGACY_COLUMNS}) SELECT {LEGACY_COLUMNS} FROM legacy_job_audit
ON CONFLICT (id) DO UPDATE SET {RESTORED}
WHERE (legacy_training_jobs.*) IS DISTINCT FROM (EXCLUDED.*)""",
    ),
    ("conversions_cleared", "DELETE FROM legacy_conversions"),
    ("audit_rows_cleared", "DELETE FROM legacy_job_audit"),
)


@dataclass(frozen=True)
class PlainBatch:
    """What the server did with one batch's plainly valid rows."""

    rows: int  # in the batch, plain or doubtful
    last_id: str | None
    doubtful: int
    counts: list[tuple[str, str, str, int]]  # (legacy type, legacy status, new state, rows)
    clashes: list[tuple[str, str, str, str]]  # (legacy id, type, status, job id) of taken job ids


class ConversionBusy(RuntimeError):
    """Another conversion or rollback holds the legacy tables."""


class LegacyStore:
    """Needs an autocommit connection: each `transaction()` block is then a real transaction."""

    def __init__(self, conn: psycopg.Connection) -> None:
        assert conn.autocommit, "a batch must commit on its own, not as a savepoint"
        self.conn = conn

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the conversion lock for the session; a killed holder's lock ends with it."""
        # A killed run's session can outlive its process by a moment: wait a while, not forever.
        self.conn.execute(f"SET lock_timeout = '{LOCK_WAIT_S}s'")
        try:
            self.conn.execute("SELECT pg_advisory_lock(%s)", (CONVERSION_LOCK_KEY,))
        except psycopg.errors.LockNotAvailable:
            raise ConversionBusy(
                f"another legacy conversion or rollback held its lock for {LOCK_WAIT_S} s; retry"
            ) from None
        finally:
            self.conn.execute("RESET lock_timeout")
        try:
            yield
        finally:
            self.conn.execute("SELECT pg_advisory_unlock(%s)", (CONVERSION_LOCK_KEY,))

    @contextmanager
    def batches_durable_at_the_end(self, *, enabled: bool = True) -> Iterator[None]:
        """Commit batches without waiting for their WAL flush; flush once when the block ends.

        A batch's jobs rows and records still commit together, visible at once; only a crash of
        the server itself (not of this process) could lose the last batches before the flush,
        and they are then simply not converted: the next run converts them, each exactly once.
        Waiting for the disk at every batch cost about a sixth of a run.
        """
        if not enabled:
            yield
            return
        self.conn.execute("SET synchronous_commit = off")
        try:
            yield
        finally:
            self.conn.execute("RESET synchronous_commit")  # the session's own setting back
            # a transaction with an id commits durably, and with it all WAL written before
            with self.conn.transaction():
                self.conn.execute("SET LOCAL synchronous_commit = on")
                self.conn.execute("SELECT pg_current_xact_id()")

    def count_converted(self) -> int:
        sql = "SELECT count(*) FROM legacy_conversions WHERE outcome = 'converted'"
        return self.conn.execute(sql).fetchone()[0]  # type: ignore[index]

    def count_not_converted(self) -> int:
        return self.conn.execute(
            "SELECT count(*) " + NOT_CONVERTED.format(after="", keys="")
        ).fetchone()[0]  # type: ignore[index]

    def hold_legacy_rows(self) -> None:
        """Keep writers off the legacy table until this batch commits (one lock, not one a row).

        A row changed between being read and its conversion record committing would escape the
        audit trigger, which only copies rows it sees converted; writers wait at most one batch.
        """
        self.conn.execute("LOCK TABLE legacy_training_jobs IN SHARE MODE")

    def convert_plain_rows(self, after: str | None, limit: int, run_id: str, *,
                           dry_run: bool, fast: bool = True) -> PlainBatch:  # fmt: skip
        """Convert the next batch's plainly valid rows in the server (dry run: only count them).

        `fast` raises psycopg.errors.UniqueViolation when another job holds one of the batch's
        job ids; the caller then redoes the batch with fast=False, which records the clash.
        """
        write = DRY if dry_run else FAST_WRITE if fast else WRITE
        sql = (BATCH.replace("__AFTER__", "" if after is None else "l.id > %(after)s AND")
               .replace("__WRITE__", write))  # fmt: skip
        row = self.conn.execute(sql, {"after": after, "n": limit, "run": run_id}).fetchone()
        assert row is not None
        rows, last, doubtful, counts, clashes = row
        return PlainBatch(rows, last, doubtful, [tuple(c) for c in counts or []],
                          [tuple(c) for c in clashes or []])  # fmt: skip

    def doubtful_rows(self, after: str | None, last: str) -> list[LegacyJob]:
        """The rows of the batch ending at `last` that SQL left for the Python conversion."""
        after_sql = "" if after is None else "l.id > %(after)s AND"
        where = NOT_CONVERTED.format(after=after_sql, keys=KEYS)
        sql = f"SELECT {LEGACY_COLUMNS} {where} AND l.id <= %(last)s AND NOT {FAST} ORDER BY l.id"
        with self.conn.cursor(row_factory=class_row(LegacyJob)) as cur:
            return cur.execute(sql, {"after": after, "last": last}).fetchall()

    def taken_job_ids(self, job_ids: Sequence[str]) -> set[str]:
        rows = self.conn.execute("SELECT job_id FROM jobs WHERE job_id = ANY(%s)", (list(job_ids),))
        return {r[0] for r in rows}

    def save_batch(self, run_id: str, converted: Sequence[Converted],
                   unconvertible: Sequence[Unconvertible]) -> list[Unconvertible]:  # fmt: skip
        """Write one batch; return the rows whose job id another job holds (left unconverted)."""
        with self.conn.cursor() as cur:
            cur.execute(SCRATCH)
            with cur.copy(f"COPY incoming_legacy_jobs ({JOB_COLUMNS}) FROM STDIN") as copy:
                for c in converted:
                    copy.write_row(_job_row(c))
            created = {r[0] for r in cur.execute(MOVE_JOBS).fetchall()}
            clashes = [id_taken(c) for c in converted if c.job_id not in created]
            columns = "legacy_id, job_id, run_id, outcome, reason"
            with cur.copy(f"COPY incoming_conversions ({columns}) FROM STDIN") as copy:
                for c in converted:
                    if c.job_id in created:
                        copy.write_row((c.legacy.id, c.job_id, run_id, "converted", None))
                for u in [*unconvertible, *clashes]:
                    copy.write_row((u.legacy.id, None, run_id, "unconvertible", u.reason))
            cur.execute(MOVE_CONVERSIONS)
        return clashes

    def rollback(self) -> dict[str, int]:
        """Undo every conversion in one transaction: jobs gone, legacy rows as audited."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            done = {k: cur.execute(sql).rowcount for k, sql in ROLLBACK}
        return done


def _job_row(c: Converted) -> tuple[object, ...]:
    resolved = c.request.resolved
    return (
        c.job_id, resolved.requested.value, resolved.effective.value, c.request.owner,
        c.request.minion_id, c.request.model_dump_json(), c.state.value,
        f"converted from legacy job {c.legacy.id} (status {c.legacy.status})",
        c.error.model_dump_json() if c.error else None, c.legacy.created_at, c.legacy.created_at,
        c.legacy.updated_at if c.state.is_terminal else None,
    )  # fmt: skip
