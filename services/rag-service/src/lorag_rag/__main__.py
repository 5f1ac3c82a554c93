"""python -m lorag_rag runs the rag-service."""

from lorag_rag.main import run

run()
