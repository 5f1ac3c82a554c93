"""SQL migrations of the migration-service (the legacy job tables), found via `lorag.migrations`."""
