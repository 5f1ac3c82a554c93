"""SQL migrations of the rag-service: the knowledge-base registry."""
