"""How the CLI's admin commands reach Postgres, with errors that say what to do when it cannot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from aiokafka.errors import KafkaConnectionError
from psycopg.rows import dict_row

from lorag_cli.output import fail
from lorag_core.settings import Settings

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], settings: Settings) -> T:
    """Run a coroutine; turn unreachable servers into a message with the fix."""
    try:
        return asyncio.run(coro)
    except psycopg.OperationalError as exc:
        fail(
            f"cannot reach Postgres: {str(exc).strip().splitlines()[0]}",
            hint="start the local servers with `lorag up`, or set LORAG_POSTGRES_DSN",
        )
    except (KafkaConnectionError, ConnectionError, OSError) as exc:
        fail(
            f"cannot reach Kafka at {settings.kafka.bootstrap_servers}: {exc}",
            hint="start the local servers with `lorag up`, or set LORAG_KAFKA_BOOTSTRAP_SERVERS",
        )


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
    conn = await psycopg.AsyncConnection.connect(
        settings.postgres_dsn, autocommit=True, row_factory=dict_row, connect_timeout=5
    )
    try:
        yield conn
    finally:
        await conn.close()
