"""LORAG_DB_MIGRATE_ON_START: a service upgrades the schema at start, or waits for a release job."""

from __future__ import annotations

import asyncio

import pytest

from lorag_core.db import migrations
from lorag_core.service import host
from lorag_core.settings import Settings

PENDING = {"component": "rag", "version": 3, "name": "kb_owner"}


class FakeDatabase:
    """migrations.upgrade and migrations.status over a schema that is `pending_checks` behind."""

    def __init__(self, pending_checks: int) -> None:
        self.pending_checks = pending_checks
        self.upgrades = 0
        self.status_checks = 0

    def upgrade(self, dsn: str) -> list[migrations.Migration]:
        self.upgrades += 1
        return []

    def status(self, dsn: str) -> migrations.Status:
        self.status_checks += 1
        behind = self.status_checks <= self.pending_checks
        return migrations.Status(applied=[], pending=[PENDING] if behind else [])


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> FakeDatabase:
    fake = FakeDatabase(pending_checks=2)
    monkeypatch.setattr(migrations, "upgrade", fake.upgrade)
    monkeypatch.setattr(migrations, "status", fake.status)
    return fake


def test_migrations_run_at_start_by_default(monkeypatch, database):
    monkeypatch.delenv("LORAG_DB_MIGRATE_ON_START", raising=False)
    settings = Settings()
    assert settings.db_migrate_on_start is True
    asyncio.run(host.prepare_schema(settings, poll_s=0))
    assert (database.upgrades, database.status_checks) == (1, 0)


def test_switched_off_the_service_waits_for_the_schema_and_never_migrates(monkeypatch, database):
    monkeypatch.setenv("LORAG_DB_MIGRATE_ON_START", "false")
    settings = Settings()
    assert settings.db_migrate_on_start is False
    asyncio.run(host.prepare_schema(settings, poll_s=0))
    # Two checks found a migration pending, the third none: it went on, having changed nothing.
    assert (database.upgrades, database.status_checks) == (0, 3)


def test_waiting_says_why_and_what_to_run(monkeypatch, database, caplog):
    monkeypatch.setenv("LORAG_DB_MIGRATE_ON_START", "false")
    with caplog.at_level("WARNING", logger=host.log.name):
        asyncio.run(host.prepare_schema(Settings(), poll_s=0))
    assert "waiting for 1 schema migrations (rag 0003)" in caplog.text
    assert "lorag db upgrade" in caplog.text


def test_the_release_job_command_upgrades_and_reports(monkeypatch, capsys):
    applied = [migrations.Migration("core", 4, "attempts", "SELECT 1")]
    monkeypatch.setattr(migrations, "upgrade", lambda dsn: applied)
    migrations.main()
    assert capsys.readouterr().out.splitlines() == [
        "applied core 0004_attempts",
        "the schema is up to date",
    ]


def test_the_release_job_fails_with_the_reason(monkeypatch):
    def refuse(dsn: str) -> list[migrations.Migration]:
        raise migrations.MigrationError("the database is newer than this code")

    monkeypatch.setattr(migrations, "upgrade", refuse)
    with pytest.raises(SystemExit, match="newer than this code"):
        migrations.main()
