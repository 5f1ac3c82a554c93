"""`lorag db upgrade | status` on real Postgres: concurrent runners, newer schemas, edited files."""

import json
import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lorag_core.db.migrations import discover

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh_db(settings):
    """A connection string whose tables live in an empty schema of their own, dropped afterwards."""
    schema = f"lorag_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    params = conninfo_to_dict(settings.postgres_dsn)
    params["options"] = f"-c search_path={schema}"
    yield make_conninfo(**params)
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def lorag_db(dsn: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lorag_cli", "db", *args],
        env={**os.environ, "LORAG_POSTGRES_DSN": dsn},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_upgrades_at_once_apply_each_migration_once(fresh_db):
    runners = [lorag_db(fresh_db, "upgrade", "--json") for _ in range(2)]
    outputs = [r.communicate(timeout=120) for r in runners]
    assert [r.returncode for r in runners] == [0, 0], outputs
    applied = [json.loads(out)["applied"] for out, _ in outputs]
    expected = sum(len(ms) for ms in discover().values())
    assert sorted(len(a) for a in applied) == [0, expected]  # one did all, the other nothing
    with psycopg.connect(fresh_db) as conn:
        rows = conn.execute("SELECT component, version FROM schema_migrations").fetchall()
    assert len(rows) == len(set(rows)) == expected
    status = lorag_db(fresh_db, "status", "--json").communicate(timeout=60)[0]
    assert json.loads(status)["pending"] == []


def test_a_newer_database_is_refused_and_left_alone(fresh_db):
    assert lorag_db(fresh_db, "upgrade").wait(timeout=120) == 0
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (component, version, name, checksum)"
            " VALUES ('core', 99, 'from_the_future', 'x')"
        )
        before = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    for command in ("upgrade", "status"):
        runner = lorag_db(fresh_db, command)
        _, err = runner.communicate(timeout=60)
        assert runner.returncode != 0
        assert "newer than this code" in " ".join(err.split())
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == before


def test_an_edited_migration_is_refused(fresh_db):
    assert lorag_db(fresh_db, "upgrade").wait(timeout=120) == 0
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE component = 'core'")
    runner = lorag_db(fresh_db, "upgrade")
    _, err = runner.communicate(timeout=60)
    assert runner.returncode != 0 and "append-only" in " ".join(err.split())
