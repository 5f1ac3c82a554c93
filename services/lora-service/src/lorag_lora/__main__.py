"""python -m lorag_lora runs the lora-service."""

from lorag_lora.main import run

run()
