"""lorag_rag."""
