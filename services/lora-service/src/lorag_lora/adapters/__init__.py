"""The lora-service's adapters to the outside: models on disk, Postgres, object storage."""
