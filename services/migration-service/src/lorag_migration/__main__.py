"""python -m lorag_migration runs the migration-service."""

from lorag_migration.main import run

run()
