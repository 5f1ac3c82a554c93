"""SQL migrations of the core tables, applied in file order."""
