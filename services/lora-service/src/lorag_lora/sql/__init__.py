"""SQL migrations of the lora-service's tables (adapter registry), applied in file order."""
