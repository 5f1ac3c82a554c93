"""Serving a FastAPI app inside a service's event loop, next to its Kafka consumers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from lorag_core.telemetry import instrument_app

log = logging.getLogger(__name__)


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the service host owns SIGTERM and stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """Starts uvicorn as an asyncio task of the running loop, and stops it."""

    def __init__(self, app: FastAPI, host: str, port: int, *, name: str = "API") -> None:
        instrument_app(app)  # server spans join the caller's trace (traceparent header)
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=5,
        )  # fmt: skip
        self.server = EmbeddedServer(config)
        self.host, self.port, self.name = host, port, name
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started and not self.task.done():
            await asyncio.sleep(0.02)
        if self.task.done():
            self.task.result()  # re-raise why it could not start (port taken…)
        log.info("%s on http://%s:%d", self.name, self.host, self.port)

    async def stop(self) -> None:
        if self.task is not None:
            self.server.should_exit = True
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):  # then cancelled with the wait
                    await self.task
