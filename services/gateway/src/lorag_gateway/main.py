"""Composition root of the gateway: the job tracker, the HTTP API and the console in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn

from lorag_core.db.changes import JobChanges
from lorag_core.service.entry import serve
from lorag_core.service.host import Runtime, ServiceHost
from lorag_core.settings import Settings
from lorag_gateway.app import create_app
from lorag_gateway.config import GatewaySettings
from lorag_gateway.deps import Gateway
from lorag_gateway.ratelimit import RateLimiter
from lorag_gateway.watch import JobWatchers

HEALTH_PORT = 8105
log = logging.getLogger(__name__)


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the service host owns SIGTERM and stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build(runtime: Runtime, settings: GatewaySettings) -> Gateway:
    """The gateway's shared things from the service host's runtime."""
    assert runtime.objects is not None
    changes = JobChanges(runtime.settings.postgres_dsn)
    changes.start()
    return Gateway(
        settings=settings, db=runtime.db, objects=runtime.objects, broker=runtime.broker,
        watchers=JobWatchers(runtime.db, changes, settings.poll_s),
        limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
    )  # fmt: skip


def register(host: ServiceHost) -> None:
    """Serve the API with uvicorn inside the service once the broker is connected."""
    settings = GatewaySettings()
    state: dict[str, object] = {}

    @host.after_start
    async def start_api(runtime: Runtime) -> None:
        gateway = build(runtime, settings)
        config = uvicorn.Config(
            create_app(gateway), host=settings.host, port=settings.port,
            log_level="warning", lifespan="off", timeout_graceful_shutdown=5,
        )  # fmt: skip
        server = EmbeddedServer(config)
        state.update(server=server, gateway=gateway, task=asyncio.create_task(server.serve()))
        log.info("gateway API on http://%s:%d", settings.host, settings.port)

    @host.on_stop
    async def stop_api(runtime: Runtime) -> None:
        server, task = state.get("server"), state.get("task")
        if isinstance(server, uvicorn.Server) and isinstance(task, asyncio.Task):
            server.should_exit = True
            gateway = state["gateway"]
            assert isinstance(gateway, Gateway)
            await gateway.watchers.close()
            await asyncio.wait_for(task, timeout=10)


def run() -> None:
    serve("gateway", Settings(), register, health_port=HEALTH_PORT)
