"""Adapters of the migration-service: its Postgres tables."""
