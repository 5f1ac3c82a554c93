"""Real local Kafka, Postgres and S3 servers without Docker, for development, demos and tests."""

from .stack import Endpoints, LocalStack, LocalStackError, free_port

__all__ = ["Endpoints", "LocalStack", "LocalStackError", "free_port"]
