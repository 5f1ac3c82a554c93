"""Legacy job conversion against real Postgres: dry run, real run, SIGKILL and resume, rollback;
through the engine and through `lorag migrate`, which asks a real migration-service.

The tests run in file order on one seeded legacy table; the module owns the legacy tables (it
truncates them first) and touches only jobs whose ids start with `legacy-`.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from lorag_migration.conversion import convert_legacy_jobs, rollback
from tests.support.processes import start_service

pytestmark = pytest.mark.integration

TYPES = ("RAG", "LORA", "HYBRID", "FINE_TUNING")
STATUSES = ("pending", "running", "done", "error", "failed", "cancelled")
PER_TYPE_AND_STATUS = 420  # 4 x 6 x 420 = 10,080 convertible rows
MALFORMED = (
    ("RAG", {"chunk_size": 256}),  # missing dataset
    ("LORA", {"lora_r": 8, "base_model": "smol"}),
    ("RAG", {"dataset_path": "/d", "chunk_sise": 256}),  # unknown keys
    ("FINE_TUNING", {"dataset_path": "/d", "lora_r": 8}),
    ("HYBRID", {"dataset_uri": "s3://old/x", "gpu": "a100"}),
    ("LORA", {"dataset_path": "/d", "lora_r": "eight"}),  # wrong types
    ("RAG", {"dataset_path": "/d", "chunk_size": [512]}),
    ("FINE_TUNING", {"dataset_path": "/d", "epochs": {"n": 2}}),
    ("HYBRID", {"dataset_path": 17}),
    ("LORA", ["not", "an", "object"]),
)
MALFORMED_COPIES = 7  # 70 malformed rows
LEGACY = "id, minion_id, type, status, config, error_message, created_at, updated_at"


def valid_config(rng: random.Random, type_: str) -> dict:
    config: dict = {rng.choice(("dataset_path", "dataset_uri")): f"s3://old/{rng.randrange(99)}/"}
    if type_ in ("RAG", "HYBRID"):
        config |= {"chunk_size": rng.choice((128, "512")), "collection": f"kb-{rng.randrange(9)}"}
    if type_ in ("LORA", "HYBRID"):
        config |= {"lora_r": rng.choice((4, 8, 16)), "lora_alpha": 32, "target_modules": ["q_proj"]}
    if type_ in ("LORA", "FINE_TUNING"):
        config |= {"learning_rate": rng.choice((1e-4, 2e-4)), "epochs": rng.choice((1, 2.5, None))}
    if type_ == "HYBRID":
        config["minion_name"] = f"minion-{rng.randrange(50)}"
    if rng.random() < 0.2:
        config["priority"] = rng.randrange(5)  # dropped: scheduling in the old system
    return config


def legacy_rows() -> tuple[list[tuple], set[str]]:
    """Every type and status, in random id order, plus malformed rows; returns rows and bad ids."""
    rng, start = random.Random(3), datetime(2023, 1, 1, tzinfo=UTC)
    rows, bad = [], set()
    combos = [(t, s, dict(valid_config(rng, t))) for t in TYPES for s in STATUSES
              for _ in range(PER_TYPE_AND_STATUS)]  # fmt: skip
    combos += [(t, rng.choice(STATUSES), c) for t, c in MALFORMED * MALFORMED_COPIES]
    for i, (type_, status, config) in enumerate(combos):
        legacy_id = str(uuid.UUID(int=rng.getrandbits(128)))
        if i >= len(TYPES) * len(STATUSES) * PER_TYPE_AND_STATUS:
            bad.add(legacy_id)
        created = start + timedelta(seconds=rng.randrange(10**7), microseconds=rng.randrange(10**6))
        error = "CUDA out of memory" if status in ("error", "failed") else None
        minion = rng.choice((None, f"m-{i % 97}"))
        rows.append((legacy_id, minion, type_, status, json.dumps(config), error, created,
                     created + timedelta(minutes=5)))  # fmt: skip
    return rows, bad


def dump(conn: psycopg.Connection, table: str) -> list[str]:
    """Every row as Postgres prints it: equal dumps mean equal rows, byte for byte."""
    return [r[0] for r in conn.execute(f"SELECT t::text FROM {table} t ORDER BY 1")]


def jobs_dump(conn: psycopg.Connection) -> list[tuple]:
    sql = ("SELECT job_id, requested_type, effective_type, minion_id, request, state, error"
           " FROM jobs WHERE job_id LIKE 'legacy-%' ORDER BY job_id")  # fmt: skip
    return conn.execute(sql).fetchall()


@dataclass
class Seeded:
    conn: psycopg.Connection
    rows: list[tuple]
    bad: set[str]
    original: list[str]

    def execute(self, sql: str, params: tuple | None = None) -> psycopg.Cursor:
        return self.conn.execute(sql, params)


@pytest.fixture(scope="module")
def db(settings) -> Iterator[Seeded]:
    """The legacy table seeded once for the module: its rows, the malformed ids, a dump."""
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE legacy_training_jobs, legacy_job_audit, legacy_conversions")
        conn.execute("DELETE FROM jobs WHERE job_id LIKE 'legacy-%'")
        rows, bad = legacy_rows()
        with conn.cursor().copy(f"COPY legacy_training_jobs ({LEGACY}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        yield Seeded(conn, rows, bad, dump(conn, "legacy_training_jobs"))


@pytest.fixture(scope="module")
def reports():
    return {}


def test_dry_run_reports_every_row_and_changes_nothing(db, settings, reports):
    report = convert_legacy_jobs(settings.postgres_dsn, dry_run=True, batch_size=700)
    good = [r for r in db.rows if r[0] not in db.bad]
    assert report.converted == len(good) >= 10_000
    assert report.by_type == Counter(r[2] for r in good)
    assert report.by_status == Counter(r[3] for r in good)
    assert report.by_state["FAILED"] == 4 * 3 * PER_TYPE_AND_STATUS  # running, error, failed
    assert {u["legacy_id"] for u in report.unconvertible} == db.bad
    reasons = " ".join(u["reason"] for u in report.unconvertible)
    for kind in ("missing dataset", "unknown config keys", "invalid", "not a JSON object"):
        assert kind in reasons
    assert dump(db.conn, "legacy_training_jobs") == db.original
    assert not jobs_dump(db.conn) and not dump(db.conn, "legacy_conversions")
    reports["dry"] = report


def lorag_migrate(db: Seeded, service, *args: str) -> dict:
    """`lorag migrate ARGS --json` against the service; its printed JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "lorag_cli", "migrate", *args, "--json"], capture_output=True,
        text=True, timeout=600,
        env={**os.environ, "LORAG_MIGRATION_SERVICE_URL": f"http://127.0.0.1:{service.port}"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if run := re.search(r"job (migration-[0-9a-f]{12})", done.stderr):
        _await_ended(db, run.group(1))  # the tracker's last write, before a test dumps jobs
    return json.loads(done.stdout)


def _await_ended(db: Seeded, job_id: str) -> None:
    for _ in range(300):
        row = db.execute("SELECT state FROM jobs WHERE job_id = %s", (job_id,)).fetchone()
        if row is not None and row[0] == "SUCCEEDED":
            return
        time.sleep(0.1)
    raise AssertionError(f"the conversion's job {job_id} did not end: {row}")


def outcome(shown: dict) -> dict:
    return {k: v for k, v in shown.items() if k not in ("dry_run", "run_id", "batches")}


def test_the_cli_dry_run_through_the_service_says_the_same(db, tracker, reports):
    shown = lorag_migrate(db, tracker, "--dry-run", "--batch-size", "700")
    assert shown["dry_run"] is True and outcome(shown) == reports["dry"].outcome()
    assert dump(db.conn, "legacy_training_jobs") == db.original and not jobs_dump(db.conn)


def test_real_run_does_what_the_dry_run_said(db, tracker, reports):
    report = lorag_migrate(db, tracker, "--batch-size", "500")  # a job of the service's own
    assert report["dry_run"] is False and outcome(report) == reports["dry"].outcome()
    converted = db.execute("SELECT legacy_id, job_id FROM legacy_conversions"
                           " WHERE outcome = 'converted'").fetchall()  # fmt: skip
    assert len(converted) == report["converted"]
    assert all(job_id == f"legacy-{legacy_id}" for legacy_id, job_id in converted)
    assert len(jobs_dump(db.conn)) == report["converted"]
    # no audit copies yet: an unchanged legacy row is its own (the first change copies it)
    assert not dump(db.conn, "legacy_job_audit")
    kept = db.execute("SELECT legacy_id FROM legacy_conversions WHERE outcome = 'unconvertible'")
    assert {r[0] for r in kept} == db.bad
    assert dump(db.conn, "legacy_training_jobs") == db.original  # nothing deleted or edited
    interrupted = db.execute("SELECT error FROM jobs WHERE job_id = %s",
                             (f"legacy-{_first(db, 'running')}",)).fetchone()[0]  # fmt: skip
    assert interrupted["code"] == "LEGACY_INTERRUPTED" and interrupted["retryable"] is True
    reports["jobs"] = jobs_dump(db.conn)


def test_a_second_run_changes_nothing(db, settings, reports):
    before = [dump(db.conn, t) for t in ("legacy_conversions", "legacy_job_audit", "jobs")]
    report = convert_legacy_jobs(settings.postgres_dsn, batch_size=500)
    assert report.converted == 0 and report.already_converted == reports["dry"].converted
    assert report.unconvertible == reports["dry"].unconvertible
    assert [dump(db.conn, t) for t in ("legacy_conversions", "legacy_job_audit", "jobs")] == before


def test_rollback_restores_the_legacy_table_exactly(db, tracker):
    # Rows an operator deleted or edited after conversion come back as they were converted: the
    # first change copies the row into the audit table, later changes leave that copy alone.
    deleted, edited = _first(db, "done"), _first(db, "pending")
    as_converted = _rows(db, "legacy_training_jobs", [deleted, edited])
    db.execute("DELETE FROM legacy_training_jobs WHERE id = %s", (deleted,))
    db.execute("UPDATE legacy_training_jobs SET status = 'archived' WHERE id = %s", (edited,))
    db.execute("UPDATE legacy_training_jobs SET config = '{}', status = 'gone' WHERE id = %s",
               (edited,))  # fmt: skip
    assert _rows(db, "legacy_job_audit", [deleted, edited]) == as_converted
    undone = lorag_migrate(db, tracker, "--rollback")
    assert undone["legacy_rows_restored"] == 2
    assert dump(db.conn, "legacy_training_jobs") == db.original
    assert not jobs_dump(db.conn)
    assert not dump(db.conn, "legacy_conversions") and not dump(db.conn, "legacy_job_audit")


def test_sigkill_mid_run_then_rerun_converts_each_row_exactly_once(
    db, settings, reports, tracker, logs_dir
):
    total = reports["dry"].converted
    doomed = start_service("lorag_migration", logs_dir)  # the service converting is killed
    started = httpx.post(
        f"http://127.0.0.1:{doomed.port}/v1/conversions", json={"batch_size": 200},
        headers={"Authorization": f"Bearer {settings.service_secret}"},
    )  # fmt: skip
    assert started.status_code == 202 and started.json()["job_id"].startswith("migration-")
    done = 0
    deadline = time.monotonic() + 60
    while done == 0 and time.monotonic() < deadline and doomed.process.poll() is None:
        done = db.execute("SELECT count(*) FROM legacy_conversions").fetchone()[0]
    doomed.kill()
    committed = db.execute("SELECT count(*) FROM jobs WHERE job_id LIKE 'legacy-%'").fetchone()[0]
    assert 0 < committed < total, "the kill must land after some batches and before the last"
    recorded = db.execute("SELECT count(*) FROM legacy_conversions"
                          " WHERE outcome = 'converted'").fetchone()[0]  # fmt: skip
    assert recorded == committed  # whole batches only: jobs and their records commit together

    report = convert_legacy_jobs(settings.postgres_dsn, batch_size=500)
    assert report.already_converted == committed
    assert report.already_converted + report.converted == total
    assert jobs_dump(db.conn) == reports["jobs"]  # the same jobs as the uninterrupted run
    runs = db.execute("SELECT count(DISTINCT run_id) FROM legacy_conversions"
                      " WHERE outcome = 'converted'").fetchone()[0]  # fmt: skip
    assert runs == 2

    lorag_migrate(db, tracker, "--rollback")
    assert dump(db.conn, "legacy_training_jobs") == db.original and not jobs_dump(db.conn)


def _first(db: Seeded, status: str) -> str:
    bad = list(db.bad)
    sql = ("SELECT min(id) FROM legacy_training_jobs"
           " WHERE status = %s AND type = 'LORA' AND NOT id = ANY(%s)")  # fmt: skip
    return db.execute(sql, (status, bad)).fetchone()[0]


def test_a_row_fixed_after_a_run_converts_on_the_next(db, settings, reports):
    """An unconvertible row whose config an operator fixed converts on the next run; its record
    turns from unconvertible to converted (the update path of the batch statement)."""
    first = convert_legacy_jobs(settings.postgres_dsn, batch_size=500)
    assert first.converted == reports["dry"].converted
    fixed = min(db.bad)
    db.execute("UPDATE legacy_training_jobs SET type = 'RAG', config = %s WHERE id = %s",
               (json.dumps({"dataset_path": "/fixed", "chunk_size": 256}), fixed))  # fmt: skip
    assert not dump(db.conn, "legacy_job_audit")  # it was not converted: nothing to keep
    second = convert_legacy_jobs(settings.postgres_dsn, batch_size=500)
    assert second.converted == 1 and second.by_type == {"RAG": 1}
    assert len(second.unconvertible) == len(db.bad) - 1
    record = db.execute("SELECT outcome, job_id, reason, run_id::text FROM legacy_conversions"
                        " WHERE legacy_id = %s", (fixed,)).fetchone()  # fmt: skip
    assert record == ("converted", f"legacy-{fixed}", None, second.run_id)
    request = db.execute("SELECT request FROM jobs WHERE job_id = %s", (f"legacy-{fixed}",))
    assert request.fetchone()[0]["datasets"][0]["uri"] == "/fixed"


def test_rollback_after_the_legacy_table_was_truncated(db, settings):
    """TRUNCATE fires no row trigger: a statement trigger copies the converted rows first."""
    before = dump(db.conn, "legacy_training_jobs")  # with the fixed row of the test above
    converted = db.execute("SELECT count(*) FROM legacy_conversions"
                           " WHERE outcome = 'converted'").fetchone()[0]  # fmt: skip
    db.execute("TRUNCATE legacy_training_jobs")
    assert len(dump(db.conn, "legacy_job_audit")) == converted
    undone = rollback(settings.postgres_dsn)
    # Only converted rows come back (the fixed one as it was converted): the rows still
    # unconvertible were never the migration's to keep, as with the copies taken at conversion.
    assert undone["legacy_rows_restored"] == converted
    lost = db.bad - {min(db.bad)}
    assert dump(db.conn, "legacy_training_jobs") == [
        r for r in before if r[1:].split(",", 1)[0] not in lost
    ]
    assert not jobs_dump(db.conn) and not dump(db.conn, "legacy_job_audit")
    _reseed(db)


def test_a_job_id_taken_by_another_job_is_reported_not_converted(db, settings, reports):
    """The batch's plain inserts meet the other job's id, and the batch is redone carefully."""
    taken = _first(db, "done")
    db.execute("INSERT INTO jobs (job_id, owner, state, message) VALUES (%s, 'someone',"
               " 'QUEUED', 'not from the migration')", (f"legacy-{taken}",))  # fmt: skip
    try:
        dry = convert_legacy_jobs(settings.postgres_dsn, batch_size=500, dry_run=True)
        report = convert_legacy_jobs(settings.postgres_dsn, batch_size=500)
        assert report.outcome() == dry.outcome()
        assert report.converted == reports["dry"].converted - 1
        clash = [u for u in report.unconvertible if u["legacy_id"] == taken]
        assert clash and "already belongs to another job" in clash[0]["reason"]
        others = [u for u in report.unconvertible if u["legacy_id"] != taken]
        assert others == reports["dry"].unconvertible
        rollback(settings.postgres_dsn)
        row = db.execute("SELECT owner, message FROM jobs WHERE job_id = %s", (f"legacy-{taken}",))
        assert row.fetchone() == ("someone", "not from the migration")  # not the migration's
        assert dump(db.conn, "legacy_training_jobs") == db.original
    finally:
        db.execute("DELETE FROM jobs WHERE job_id = %s", (f"legacy-{taken}",))


def _rows(db: Seeded, table: str, ids: list[str]) -> list[str]:
    sql = f"SELECT ({LEGACY})::text FROM {table} WHERE id = ANY(%s) ORDER BY id"
    return [r[0] for r in db.execute(sql, (ids,))]


def _reseed(db: Seeded) -> None:
    """Put the legacy table back as the module seeded it, for the tests after."""
    db.execute("TRUNCATE legacy_training_jobs, legacy_job_audit, legacy_conversions")
    with db.conn.cursor().copy(f"COPY legacy_training_jobs ({LEGACY}) FROM STDIN") as copy:
        for row in db.rows:
            copy.write_row(row)
    assert dump(db.conn, "legacy_training_jobs") == db.original
