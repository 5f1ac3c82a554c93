"""lorag_cli."""
