"""lorag_gateway."""
