"""python -m lorag_hybrid runs the hybrid-orchestrator."""

from lorag_hybrid.main import run

run()
