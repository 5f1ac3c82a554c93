"""lorag_lora."""
