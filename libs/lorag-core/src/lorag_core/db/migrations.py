"""Ordered, append-only SQL migrations with a version table, safe under concurrent runners.

Each component (the core and every service that owns tables) ships a folder of `NNNN_name.sql`
files. `upgrade` applies what is missing under an advisory lock; a file that changed after it
was applied, or a database newer than the code, is refused rather than guessed at.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path

import psycopg

MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
ENTRY_POINT_GROUP = "lorag.migrations"
ADVISORY_LOCK_KEY = 0x6C6F726167  # "lorag"

VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component  text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


class MigrationError(RuntimeError):
    """The database and the code disagree about the schema; the message says what to do."""


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_folder(component: str, folder: Path | resources.abc.Traversable) -> list[Migration]:
    """Read a component's migration files in version order."""
    found = []
    for entry in folder.iterdir():
        match = MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(component, int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(
            f"{component}: migration versions must run 1..n without gaps: {versions}"
        )
    return found


def discover() -> dict[str, list[Migration]]:
    """Every installed component's migrations, found through the `lorag.migrations` entry points."""
    plans: dict[str, list[Migration]] = {
        "core": load_folder("core", resources.files("lorag_core.db.sql"))
    }
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        plans[ep.name] = load_folder(ep.name, resources.files(ep.value))
    return plans


@dataclass(frozen=True)
class Status:
    applied: list[dict[str, object]]
    pending: list[dict[str, object]]


def _applied(conn: psycopg.Connection) -> dict[tuple[str, int], dict]:
    conn.execute(VERSION_TABLE)
    rows = conn.execute(
        "SELECT component, version, name, checksum, applied_at FROM schema_migrations"
    ).fetchall()
    return {(r[0], r[1]): {"name": r[2], "checksum": r[3], "applied_at": r[4]} for r in rows}


def _check(plans: dict[str, list[Migration]], applied: dict[tuple[str, int], dict]) -> None:
    for (component, version), row in sorted(applied.items()):
        known = plans.get(component)
        if known is None:
            continue  # a component not installed in this process; its own service checks it
        if version > len(known):
            raise MigrationError(
                f"the database schema of {component!r} is at version {version}, newer than this "
                f"code (which knows up to {len(known)}). Upgrade lorag before running against "
                "this database; it was not changed."
            )
        if known[version - 1].checksum != row["checksum"]:
            raise MigrationError(
                f"migration {component} {version:04d}_{row['name']} changed after it was applied; "
                "migrations are append-only: restore the file and add a new migration instead."
            )


def status(dsn: str, plans: dict[str, list[Migration]] | None = None) -> Status:
    """Applied and pending migrations; changes nothing but creating the version table."""
    plans = discover() if plans is None else plans
    with psycopg.connect(dsn, autocommit=True) as conn:
        applied = _applied(conn)
    _check(plans, applied)
    done = [
        {
            "component": c,
            "version": v,
            "name": row["name"],
            "applied_at": row["applied_at"].isoformat(),
        }
        for (c, v), row in sorted(applied.items())
    ]
    pending = [
        {"component": m.component, "version": m.version, "name": m.name}
        for ms in plans.values()
        for m in ms
        if (m.component, m.version) not in applied
    ]
    return Status(done, pending)


def upgrade(dsn: str, plans: dict[str, list[Migration]] | None = None) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; return what was applied."""
    plans = discover() if plans is None else plans
    applied_now: list[Migration] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        # One runner at a time: the others wait here, then find nothing left to do.
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            applied = _applied(conn)
            _check(plans, applied)
            for migrations in plans.values():
                for m in migrations:
                    if (m.component, m.version) in applied:
                        continue
                    with conn.transaction():
                        conn.execute(m.sql)
                        conn.execute(
                            "INSERT INTO schema_migrations (component, version, name, checksum)"
                            " VALUES (%s, %s, %s, %s)",
                            (m.component, m.version, m.name, m.checksum),
                        )
                    applied_now.append(m)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied_now


def main() -> None:
    """`python -m lorag_core.db.migrations`: upgrade with the LORAG_* settings (a release job)."""
    from lorag_core.settings import Settings

    try:
        applied = upgrade(Settings().postgres_dsn)
    except MigrationError as exc:
        raise SystemExit(f"lorag migrations: {exc}") from None
    for m in applied:
        print(f"applied {m.component} {m.version:04d}_{m.name}", flush=True)
    print("the schema is up to date", flush=True)


if __name__ == "__main__":
    main()
