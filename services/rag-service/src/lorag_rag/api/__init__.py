"""The rag-service's HTTP API: what other lorag processes may ask of its knowledge bases."""
