"""The real servers for a test session: given by environment, or started on free ports."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lorag_local.stack import Endpoints, LocalStack, free_port

ENV_OF = {
    "kafka_bootstrap": "LORAG_KAFKA_BOOTSTRAP_SERVERS",
    "postgres_dsn": "LORAG_POSTGRES_DSN",
    "s3_endpoint": "LORAG_S3_ENDPOINT",
    "s3_access_key": "LORAG_S3_ACCESS_KEY",
    "s3_secret_key": "LORAG_S3_SECRET_KEY",
    "otlp_endpoint": "LORAG_OTEL_ENDPOINT",
    "trace_ui_url": "LORAG_OTEL_TRACE_UI_URL",
}


@contextmanager
def real_servers() -> Iterator[tuple[Endpoints, Path | None]]:
    """Yield real Kafka, Postgres, S3 and Jaeger endpoints, and the stack's folder if ours.

    LORAG_TEST_USE_ENV=1 uses the LORAG_* endpoints from the environment as they are (for a
    Docker host or a shared stack); otherwise a private stack runs on free ports for the session.
    """
    if os.environ.get("LORAG_TEST_USE_ENV") == "1":
        given = {field: os.environ[var] for field, var in ENV_OF.items() if var in os.environ}
        yield Endpoints(**given), None
        return
    state_dir = Path(tempfile.mkdtemp(prefix="lorag-test-stack-"))
    stack = LocalStack(
        state_dir, kafka_port=free_port(), postgres_port=free_port(), s3_port=free_port(),
        otlp_port=free_port(), trace_ui_port=free_port(),
    )  # fmt: skip
    endpoints = stack.up(progress=lambda _m: None)
    try:
        yield endpoints, state_dir
    finally:
        stack.down()
        shutil.rmtree(state_dir, ignore_errors=True)


def export(endpoints: Endpoints) -> None:
    """Point this process and every child it starts at the endpoints."""
    for field, var in ENV_OF.items():
        os.environ[var] = getattr(endpoints, field)
    os.environ["LORAG_PROFILE"] = "local"
