"""lorag_hybrid."""
