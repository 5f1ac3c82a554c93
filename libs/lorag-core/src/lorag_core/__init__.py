"""lorag_core."""
