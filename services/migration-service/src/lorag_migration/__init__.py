"""lorag_migration."""
